"""Object storage: safe keys, objects with sidecars, listings that skip unfinished writes."""

import json

import pytest

from resources.errors import InvalidKeyError, NotFoundError
from resources.storage import (
    SIDECAR_SUFFIX,
    ObjectStore,
    message_key,
    stage_prefix,
    validate_key,
)


@pytest.fixture
def store(tmp_path):
    return ObjectStore((tmp_path / "storage").as_uri())


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "executions/../../etc/passwd",
        "executions/a/../b",
        "executions/./a",
        "executions//a",
        "executions/a%2F..%2Fb",
        "executions/a\\..\\b",
        "executions/a\x00b",
        "executions/a b",
        "executions/" + "a" * 1100,
    ],
)
def test_unsafe_keys_are_refused(key, store):
    with pytest.raises(InvalidKeyError):
        validate_key(key)
    with pytest.raises(InvalidKeyError):
        store.get(key)


def test_safe_keys_and_prefixes():
    assert message_key("e1", "route", "stage", "msg-01") == "executions/e1/route/stage/msg-01"
    assert stage_prefix("e1", "route", "stage") == "executions/e1/route/stage/"
    assert validate_key("", allow_prefix=True) == ""
    with pytest.raises(InvalidKeyError):
        message_key("e1", "route", "stage", "x.meta.json")


def test_put_writes_the_object_and_a_sidecar_with_hash_and_extras(store, tmp_path):
    key = "executions/e1/r/s/m1"
    sidecar = store.put(key, b"<html>hi</html>", "text/html", {"url": "http://x/", "custom": {"kept": True}})
    assert store.get(key) == b"<html>hi</html>"
    assert store.metadata(key) == sidecar
    assert sidecar["size"] == 15
    assert sidecar["sha256"] == "beb6d42e2e372ff35ff73af2a4bd53d0e440f07180b89ea67136a92c8f80a8ba"
    assert sidecar["content_type"] == "text/html" and sidecar["key"] == key
    assert sidecar["custom"] == {"kept": True}  # unknown fields are kept
    on_disk = tmp_path / "storage" / (key + SIDECAR_SUFFIX)
    assert json.loads(on_disk.read_text())["url"] == "http://x/"


def test_listing_skips_sidecars_and_unfinished_writes(store, tmp_path):
    store.put("executions/e1/r/s/a", b"1", "text/plain", {})
    store.put("executions/e1/r/s/b", b"22", "text/plain", {})
    store.put("executions/e1/r/t/c", b"333", "text/plain", {})
    (tmp_path / "storage/executions/e1/r/s/torn").write_bytes(b"object without sidecar")
    assert [o.key for o in store.objects("executions/e1/")] == ["executions/e1/r/s/a", "executions/e1/r/s/b", "executions/e1/r/t/c"]
    assert [o.size for o in store.objects("executions/e1/r/s/")] == [1, 2]
    assert [o.key for o in store.objects("executions/e1/", limit=1)] == ["executions/e1/r/s/a"]
    assert store.keys("executions/e1/r/s/") == ["executions/e1/r/s/a", "executions/e1/r/s/b"]
    assert store.keys("executions/nothing/") == []
    assert list(store.objects("executions/nothing/")) == []


def test_a_torn_sidecar_reads_as_missing(store, tmp_path):
    store.put("executions/e1/r/s/a", b"1", "text/plain", {})
    (tmp_path / ("storage/executions/e1/r/s/a" + SIDECAR_SUFFIX)).write_text('{"key": "executions/e1/r/s/a", "si')
    with pytest.raises(NotFoundError, match="unfinished write"):
        store.metadata("executions/e1/r/s/a")


def test_missing_objects_are_not_found(store):
    with pytest.raises(NotFoundError):
        store.get("executions/e1/r/s/none")
    assert not store.exists("executions/e1/r/s/none")


def test_delete_prefix_removes_objects_and_sidecars(store):
    store.put("executions/e1/r/s/a", b"1", "text/plain", {})
    store.put("executions/e1/r/t/b", b"1", "text/plain", {})
    assert store.delete_prefix("executions/e1/r/s/") == 1
    assert store.keys("executions/e1/r/s/") == []
    assert store.keys("executions/e1/r/t/") == ["executions/e1/r/t/b"]


def test_browse_shows_one_level_with_object_counts_below_each_folder(store, tmp_path):
    store.put("executions/e1/r/s/a", b"1", "text/plain", {})
    store.put("executions/e1/r/t/b", b"22", "text/plain", {})
    store.put("executions/e1/top", b"333", "text/plain", {})
    (tmp_path / "storage/executions/e1/r/s/torn").write_bytes(b"no sidecar: not counted")
    folders, files = store.browse("executions/e1")
    assert [(f.prefix, f.objects, f.size) for f in folders] == [("executions/e1/r/", 2, 3)]
    assert [(o.key, o.size) for o in files] == [("executions/e1/top", 3)]
    folders, files = store.browse("")
    assert [(f.prefix, f.objects) for f in folders] == [("executions/", 3)] and files == []
    assert store.browse("executions/nothing/") == ([], [])


def test_download_copies_objects_and_sidecars_keys_as_folders(store, tmp_path):
    from fsspec.callbacks import Callback

    store.put("executions/e1/r/s/a", b"\x00\xffbinary", "application/octet-stream", {})
    store.put("executions/e1/r/t/b", b"text", "text/plain", {"url": "http://x/"})
    store.put("executions/e2/r/s/c", b"other execution", "text/plain", {})
    progress = Callback()
    objects, size = store.download("executions/e1/", str(tmp_path / "out"), progress)
    assert (objects, size) == (2, 12)
    assert progress.size == 4 and progress.value == 4  # objects and sidecars
    out = tmp_path / "out"
    assert (out / "executions/e1/r/s/a").read_bytes() == b"\x00\xffbinary"
    assert json.loads((out / ("executions/e1/r/t/b.txt" + SIDECAR_SUFFIX)).read_text())["url"] == "http://x/"
    # named for what they hold: text/plain is .txt; a type without an extension keeps the key's name
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a", "a" + SIDECAR_SUFFIX, "b.txt", "b.txt" + SIDECAR_SUFFIX]


def test_file_extensions_follow_the_content_type():
    from resources.storage import file_extension

    assert file_extension("executions/e/r/s/page", "text/html; charset=utf-8") == ".html"
    assert file_extension("executions/e/r/s/page-000", "text/markdown; charset=utf-8; variant=GFM") == ".md"
    assert file_extension("executions/e/r/s/urls", "application/json") == ".json"
    assert file_extension("executions/e/dataset/pages.parquet", "application/vnd.apache.parquet") == ""
    assert file_extension("executions/e/r/s/notes.txt", "text/plain") == ""  # already says so


def test_watch_reports_each_write_once_while_another_thread_writes(store):
    """Objects written before, during and just before the end are each reported exactly once;
    an object rewritten later is a new write and reported again."""
    import threading

    store.put("executions/e1/r/s/before", b"0", "text/plain", {})
    writing_done = threading.Event()

    def writer():
        for i in range(30):
            store.put(f"executions/e1/r/s/m{i:02d}", b"x", "text/plain", {})
            if i == 15:
                store.put("executions/e1/r/s/before", b"rewritten", "text/plain", {})
            threading.Event().wait(0.005)
        writing_done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = [o.key for o in store.watch("executions/e1/", writing_done.is_set, interval=0.01)]
    thread.join()
    expected = {"executions/e1/r/s/before"} | {f"executions/e1/r/s/m{i:02d}" for i in range(30)}
    assert set(seen) == expected
    assert len(seen) - len(expected) in (0, 1)  # the rewrite is reported again unless both fell in one look
    assert seen.count("executions/e1/r/s/before") == len(seen) - len(expected) + 1


def test_watch_reports_a_rewrite_as_a_new_write_and_looks_once_more_at_the_end(store, tmp_path):
    import os

    key = "executions/e1/r/s/a"
    state = {"done": False}
    store.put(key, b"1", "text/plain", {})
    watch = store.watch("executions/e1/", lambda: state["done"], interval=0)
    assert next(watch).key == key
    sidecar = tmp_path / "storage" / (key + SIDECAR_SUFFIX)
    store.put(key, b"22", "text/plain", {})
    os.utime(sidecar, ns=(sidecar.stat().st_mtime_ns + 1_000_000,) * 2)  # a later write, even on a coarse clock
    store.put("executions/e1/r/s/b", b"3", "text/plain", {})
    state["done"] = True
    assert sorted(o.key for o in watch) == [key, "executions/e1/r/s/b"]


def test_a_reader_never_sees_a_half_written_sidecar_or_object(store, tmp_path):
    """Local writes land whole (written beside, then renamed): a reader polling while another
    thread rewrites one key always parses the sidecar and reads one of the written payloads."""
    import threading

    key = "executions/e1/r/s/a"
    payloads = [bytes([65 + i % 26]) * (1 + 50_000 * (i % 3)) for i in range(60)]
    store.put(key, payloads[0], "text/plain", {"extra": "x" * 20_000})
    done = threading.Event()

    def writer():
        for payload in payloads[1:]:
            store.put(key, payload, "text/plain", {"extra": "x" * 20_000})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set():
        assert store.metadata(key)["key"] == key
        assert store.get(key) in payloads
        reads += 1
    thread.join()
    assert reads > 0
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.name.endswith(".partial")]
