"""Object storage for messages: one object per message plus a JSON sidecar, over fsspec.

The root is a URI: `file:///…` or `s3://bucket/prefix` (s3fs; an endpoint URL makes it MinIO or
any S3-compatible store). Keys are relative, `/`-separated and checked before every use, so no key
from a message or the CLI can reach outside the root. The sidecar `<key>.meta.json` is written
after the object: an object without its sidecar is an unfinished write and is not listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import fsspec

from factflow_assets.errors import InvalidKeyError, NotFoundError
from factflow_assets.ids import content_hash

SIDECAR_SUFFIX = ".meta.json"
MAX_KEY_LENGTH = 1024
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._=-]+$")

#: Sidecar fields the engine owns; everything else in a sidecar is an adapter extra.
CORE_SIDECAR_FIELDS = frozenset(
    {
        "key", "content_type", "size", "sha256", "execution_id", "route", "stage", "adapter_type",
        "message_id", "parent_message_id", "lineage_id", "config_hash", "dagster_run_id", "written_at",
    }
)


def validate_key(key: str, *, allow_prefix: bool = False) -> str:
    """Return `key` if it is safe, else raise InvalidKeyError saying why.

    Safe: relative, no empty, `.` or `..` segments, only letters, digits and `._=-` in segments,
    at most 1,024 characters. `allow_prefix` admits a trailing `/` (and the empty root prefix).
    """
    if not isinstance(key, str):
        raise InvalidKeyError("a key must be text")
    if allow_prefix:
        if key == "":
            return key
        key_body = key[:-1] if key.endswith("/") else key
    else:
        key_body = key
    if not key_body:
        raise InvalidKeyError("empty key")
    if "\x00" in key:
        raise InvalidKeyError("key contains a NUL byte")
    if "\\" in key:
        raise InvalidKeyError(f"key contains a backslash: {key!r}")
    if key.startswith("/"):
        raise InvalidKeyError(f"key must be relative, not absolute: {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"key is longer than {MAX_KEY_LENGTH} characters")
    for segment in key_body.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(f"key has an empty, '.' or '..' segment: {key!r}")
        if not _SAFE_SEGMENT.match(segment):
            raise InvalidKeyError(f"key has characters outside [A-Za-z0-9._=-]: {key!r}")
    return key


def stage_prefix(execution_id: str, route: str, stage: str) -> str:
    return validate_key(f"executions/{execution_id}/{route}/{stage}/", allow_prefix=True)


def message_key(execution_id: str, route: str, stage: str, message_id: str) -> str:
    key = validate_key(f"executions/{execution_id}/{route}/{stage}/{message_id}")
    if key.endswith(SIDECAR_SUFFIX):
        raise InvalidKeyError(f"a message id cannot end in {SIDECAR_SUFFIX}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None


class ObjectStore:
    """Keys and sidecars over one fsspec filesystem; plain Python, used by assets and the CLI."""

    def __init__(self, uri: str, endpoint_url: str | None = None):
        self.uri = uri.rstrip("/")
        options: dict = {}
        if self.uri.startswith("file://") or "://" not in self.uri:
            options["auto_mkdir"] = True
        elif self.uri.startswith("s3://") and endpoint_url:
            options["endpoint_url"] = endpoint_url
        self.fs, root = fsspec.core.url_to_fs(self.uri, **options)
        self.root = root.rstrip("/")

    def _path(self, key: str, *, prefix: bool = False) -> str:
        validate_key(key, allow_prefix=prefix)
        return f"{self.root}/{key}".rstrip("/") if prefix else f"{self.root}/{key}"

    def _key(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def url(self, key: str) -> str:
        return f"{self.uri}/{key}"

    # --- writing -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str, metadata: dict) -> dict:
        """Write the object, then its sidecar; return the sidecar."""
        path = self._path(key)
        sidecar = {
            **metadata,
            "key": key,
            "content_type": content_type,
            "size": len(data),
            "sha256": content_hash(data),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        self.fs.pipe_file(path, data)
        self.fs.pipe_file(path + SIDECAR_SUFFIX, json.dumps(sidecar, sort_keys=True, default=str).encode())
        return sidecar

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object and sidecar under `prefix`; return how many objects went."""
        path = self._path(prefix, prefix=True)
        self.invalidate(path)
        files = self.fs.find(path)
        if files:
            self.fs.rm(files)
        return sum(1 for f in files if not f.endswith(SIDECAR_SUFFIX))

    # --- reading -----------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            raise NotFoundError(f"no object at {key}") from None

    def metadata(self, key: str) -> dict:
        """The sidecar of `key`; NotFoundError when it is missing or unreadable (a torn write)."""
        try:
            return json.loads(self.fs.cat_file(self._path(key) + SIDECAR_SUFFIX))
        except FileNotFoundError:
            raise NotFoundError(f"no object at {key}") from None
        except ValueError:
            raise NotFoundError(f"the sidecar of {key} is unreadable (an unfinished write?)") from None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key) + SIDECAR_SUFFIX)

    def invalidate(self, path: str | None = None) -> None:
        """Forget cached listings, to see what another process wrote."""
        self.fs.invalidate_cache(path)

    def list(self, prefix: str, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Objects under `prefix` (recursively), sorted by key; sidecars are not objects."""
        path = self._path(prefix, prefix=True)
        self.invalidate(path)
        entries = self.fs.find(path, detail=True)
        complete = {p[: -len(SIDECAR_SUFFIX)] for p in entries if p.endswith(SIDECAR_SUFFIX)}
        count = 0
        for name in sorted(complete):
            info = entries.get(name)
            if info is None:
                continue
            yield ObjectInfo(self._key(name), int(info.get("size") or 0), _modified(info))
            count += 1
            if limit is not None and count >= limit:
                return

    def keys(self, prefix: str) -> list[str]:
        """Keys of the complete objects directly under `prefix` (one level)."""
        path = self._path(prefix, prefix=True)
        self.invalidate(path)
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return sorted(self._key(n)[: -len(SIDECAR_SUFFIX)] for n in names if n.endswith(SIDECAR_SUFFIX))


def _modified(info: dict) -> datetime | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return value if isinstance(value, datetime) else None

