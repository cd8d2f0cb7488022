"""Object storage: safe keys, objects with sidecars, listings that skip unfinished writes."""

import json

import pytest

from factflow_assets.errors import InvalidKeyError, NotFoundError
from resources.storage import SIDECAR_SUFFIX, ObjectStore, message_key, stage_prefix, validate_key


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
    assert [o.key for o in store.list("executions/e1/")] == ["executions/e1/r/s/a", "executions/e1/r/s/b", "executions/e1/r/t/c"]
    assert [o.size for o in store.list("executions/e1/r/s/")] == [1, 2]
    assert [o.key for o in store.list("executions/e1/", limit=1)] == ["executions/e1/r/s/a"]
    assert store.keys("executions/e1/r/s/") == ["executions/e1/r/s/a", "executions/e1/r/s/b"]
    assert store.keys("executions/nothing/") == []
    assert list(store.list("executions/nothing/")) == []


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
