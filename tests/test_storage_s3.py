"""Object storage on a real S3 endpoint (moto's server on loopback, through s3fs as for MinIO),
and the streamed, key-ordered listings both storages share."""

import subprocess
import sys
import threading

import pytest
from conftest import new_bucket

from factflow_assets.settings import PROJECT_ROOT
from resources import storage_listing
from resources.storage import SIDECAR_SUFFIX, ObjectStore


@pytest.fixture
def s3_store(s3_endpoint) -> ObjectStore:
    return ObjectStore(f"s3://{new_bucket(s3_endpoint)}/root", s3_endpoint)


@pytest.fixture(params=["file", "s3"])
def any_store(request, tmp_path) -> ObjectStore:
    if request.param == "file":
        return ObjectStore((tmp_path / "storage").as_uri())
    return request.getfixturevalue("s3_store")


def write_raw(store: ObjectStore, key: str, data: bytes) -> None:
    """A file written behind the store's back: a torn write or an orphaned sidecar."""
    store.fs.pipe_file(store.url(key), data)


def test_objects_sidecars_and_listings_on_s3(s3_store):
    store = s3_store
    sidecar = store.put("executions/e1/r/s/a", b"<p>1</p>", "text/html", {"url": "http://x/"})
    store.put("executions/e1/r/s/b", b"22", "text/plain", {})
    store.put("executions/e1/r/t/c", b"333", "text/plain", {})
    store.put("executions/e1/top", b"4444", "text/plain", {})
    write_raw(store, "executions/e1/r/s/torn", b"object without sidecar")
    assert store.get("executions/e1/r/s/a") == b"<p>1</p>" and store.metadata("executions/e1/r/s/a") == sidecar
    assert store.url("executions/e1/r/s/a").startswith("s3://") and store.exists("executions/e1/r/s/a")
    assert [o.key for o in store.objects("executions/e1/")] == [
        "executions/e1/r/s/a", "executions/e1/r/s/b", "executions/e1/r/t/c", "executions/e1/top",
    ]
    assert [o.size for o in store.objects("executions/e1/r/s/")] == [8, 2]
    assert all(o.modified is not None for o in store.objects("executions/e1/"))
    assert store.keys("executions/e1/r/s/") == ["executions/e1/r/s/a", "executions/e1/r/s/b"]
    assert store.keys("executions/e1/") == ["executions/e1/top"]  # one level
    folders, files = store.browse("executions/e1")
    assert [(f.prefix, f.objects, f.size) for f in folders] == [("executions/e1/r/", 3, 13)]
    assert [o.key for o in files] == ["executions/e1/top"]
    assert store.delete_prefix("executions/e1/r/") == 4  # the torn write went too
    assert store.keys("executions/e1/r/s/") == [] and [o.key for o in store.objects("executions/")] == ["executions/e1/top"]


def test_download_and_watch_on_s3(s3_store, tmp_path):
    store = s3_store
    store.put("executions/e1/r/s/a", b"\x00\xff", "application/octet-stream", {})
    assert store.download("executions/e1/", str(tmp_path / "out")) == (1, 2)
    assert (tmp_path / "out/executions/e1/r/s/a").read_bytes() == b"\x00\xff"
    assert (tmp_path / "out/executions/e1/r/s" / ("a" + SIDECAR_SUFFIX)).exists()

    state = {"done": False}
    watch = store.watch("executions/e1/", lambda: state["done"], interval=0)
    assert next(watch).key == "executions/e1/r/s/a"
    store.put("executions/e1/r/s/a", b"rewritten", "text/plain", {})  # a new sidecar: a new ETag
    store.put("executions/e1/r/s/b", b"new", "text/plain", {})
    state["done"] = True
    assert sorted(o.key for o in watch) == ["executions/e1/r/s/a", "executions/e1/r/s/b"]


def test_pairing_in_key_order_with_neighbours_between_an_object_and_its_sidecar(any_store):
    """`x-1` sorts between `x` and `x.meta.json`: the listing still pairs each object with its own
    sidecar, leaves out the torn write and the orphaned sidecar, and comes out in key order."""
    store = any_store
    for key in ("p/x", "p/x-1", "p/x-1-2", "p/x.1", "p/x0", "p/x=", "p/x1/inner", "p/w"):
        store.put(key, key.encode(), "text/plain", {})
    write_raw(store, "p/x-2", b"torn: no sidecar")
    write_raw(store, "p/x-3" + SIDECAR_SUFFIX, b"{}")  # its object is gone
    listed = [o.key for o in store.objects("p/")]
    assert listed == sorted(listed) == ["p/w", "p/x", "p/x-1", "p/x-1-2", "p/x.1", "p/x0", "p/x1/inner", "p/x="]
    assert [store.get(key) for key in listed] == [key.encode() for key in listed]


def test_s3_listings_are_paged_and_streamed(s3_store, monkeypatch):
    store = s3_store
    for i in range(12):
        store.put(f"executions/e1/r/s/m{i:02d}", b"x", "text/plain", {})
    monkeypatch.setattr(storage_listing, "PAGE_SIZE", 5)
    calls = []
    real = store.fs.call_s3
    monkeypatch.setattr(store.fs, "call_s3", lambda method, **kw: calls.append(method) or real(method, **kw))
    assert len(list(store.objects("executions/e1/"))) == 12
    assert calls.count("list_objects_v2") == 5  # 24 keys, 5 a page
    calls.clear()
    assert [o.key for o in store.objects("executions/e1/", limit=2)] == ["executions/e1/r/s/m00", "executions/e1/r/s/m01"]
    assert calls.count("list_objects_v2") == 1  # a limited listing stops at the first page
    assert len(store.keys("executions/e1/r/s/")) == 12


def test_a_long_lived_store_sees_what_another_process_writes(s3_store):
    store = s3_store
    assert store.keys("executions/e1/r/s/") == []
    script = (
        "import sys; from resources.storage import ObjectStore; "
        "ObjectStore(sys.argv[1], sys.argv[2]).put('executions/e1/r/s/from-elsewhere', b'hi', 'text/plain', {})"
    )
    subprocess.run([sys.executable, "-c", script, store.uri, store.fs.client_kwargs.get("endpoint_url") or store.fs.endpoint_url],
                   cwd=PROJECT_ROOT, check=True)
    assert store.keys("executions/e1/r/s/") == ["executions/e1/r/s/from-elsewhere"]
    assert [o.key for o in store.objects("executions/")] == ["executions/e1/r/s/from-elsewhere"]


def test_concurrent_writers_on_s3_lose_nothing(s3_store):
    store = s3_store
    threads = [
        threading.Thread(target=lambda w=w: [store.put(f"executions/e{w}/r/s/m{i}", b"x" * i, "text/plain", {}) for i in range(15)])
        for w in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list(store.objects("executions/"))) == 60
