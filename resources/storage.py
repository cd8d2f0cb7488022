"""Object storage for messages: one object per message plus a JSON sidecar, over fsspec.

The root is a URI: `file:///…` or `s3://bucket/prefix` (s3fs; an endpoint URL makes it MinIO or
any S3-compatible store). Keys are relative, `/`-separated and checked before every use, so no key
from a message or the CLI can reach outside the root. The sidecar `<key>.meta.json` is written
after the object: an object without its sidecar is an unfinished write and is not listed. Each
file lands whole (S3 PUTs are atomic; local files are renamed into place), so a reader never
parses half a sidecar. Listings are streamed in key order (`storage_listing`), never loaded whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import InvalidKeyError, NotFoundError
from .hashing import content_hash
from .storage_listing import PARTIAL_SUFFIX, SIDECAR_SUFFIX, complete_objects, walk

#: Files per delete or download request (S3 deletes up to 1,000 keys per request).
TRANSFER_BATCH = 1000
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


#: File extensions by content type, for objects written out to a folder.
_EXTENSIONS = {
    "text/html": ".html", "application/xhtml+xml": ".html", "text/markdown": ".md", "application/json": ".json",
    "text/plain": ".txt", "application/xml": ".xml", "text/xml": ".xml", "application/pdf": ".pdf", "text/csv": ".csv",
}


def file_extension(key: str, content_type: str) -> str:
    """What a file holding the object should end in (none when its key already ends so, or the
    type is unknown)."""
    extension = _EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower(), "")
    return "" if not extension or key.lower().endswith(extension) else extension


def execution_prefix(execution_id: str, route: str | None = None) -> str:
    """Where an execution's objects are, or one route's of them."""
    return validate_key(f"executions/{execution_id}/" + (f"{route}/" if route else ""), allow_prefix=True)


def stage_prefix(execution_id: str, route: str, stage: str) -> str:
    return validate_key(f"{execution_prefix(execution_id, route)}{stage}/", allow_prefix=True)


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


@dataclass
class FolderInfo:
    """One folder of a browse: its prefix, and the objects and bytes anywhere below it."""

    prefix: str
    objects: int = 0
    size: int = 0


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
        self._folders: set[str] = set()  # local folders known to exist (one mkdir each, not one per write)

    @property
    def is_local(self) -> bool:
        """A local file system (fast, no network): callers may skip handing calls to threads."""
        return isinstance(self.fs, LocalFileSystem)

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
            "written_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self._write_whole(path, data, new_may_be_direct=True)
        self._write_whole(path + SIDECAR_SUFFIX, json.dumps(sidecar, sort_keys=True, default=str).encode())
        return sidecar

    def put_file(self, key: str, local_path: str, content_type: str, metadata: dict, sha256: str) -> dict:
        """Write a local file as the object (streamed, never whole in memory: a dataset's Parquet),
        then its sidecar; return the sidecar. `sha256` is the file's, computed as it was written."""
        path = self._path(key)
        sidecar = {
            **metadata,
            "key": key,
            "content_type": content_type,
            "size": os.path.getsize(local_path),
            "sha256": sha256,
            "written_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if self.is_local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = path + PARTIAL_SUFFIX
            self.fs.put_file(local_path, partial)
            os.replace(partial, path)
        else:
            self.fs.put_file(local_path, path)
        self._write_whole(path + SIDECAR_SUFFIX, json.dumps(sidecar, sort_keys=True, default=str).encode())
        return sidecar

    def open_read(self, key: str):
        """The object as a file to read from (a Parquet reader takes it a row group at a time)."""
        return self.fs.open(self._path(key), "rb")

    def _write_whole(self, path: str, data: bytes, new_may_be_direct: bool = False) -> None:
        """Write so that a reader sees the old bytes or the new, never half of them.

        An S3 PUT is atomic already. A local file is written beside its name and renamed over
        it: a sidecar caught half-written would otherwise be listed with one size and again with
        another (a watcher reported such writes twice), and a rewritten object read torn. An
        object that does not exist yet has nobody to read it before its sidecar exists (an object
        without a sidecar is not listed), so it is created in place (`new_may_be_direct`): a
        1,000-page run creates ~6,000 objects, and the file and the rename saved are a third of
        what storing them costs.
        """
        if not isinstance(self.fs, LocalFileSystem):
            self.fs.pipe_file(path, data)
            return
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        try:
            self._write_local(path, data, new_may_be_direct)
        except FileNotFoundError:  # the folder went since (deleted by someone else): make it again
            os.makedirs(folder, exist_ok=True)
            self._write_local(path, data, new_may_be_direct)

    @staticmethod
    def _write_local(path: str, data: bytes, new_may_be_direct: bool) -> None:
        if new_may_be_direct:
            try:
                with open(path, "xb") as handle:
                    handle.write(data)
                return
            except FileExistsError:
                pass  # written before (a replay, a retry): replace it whole
        partial = f"{path}.{os.getpid()}-{threading.get_ident()}{PARTIAL_SUFFIX}"
        try:
            with open(partial, "wb") as handle:
                handle.write(data)
            os.replace(partial, path)
        except OSError:  # a full disk, say: leave no half file behind
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise

    def carry(self, source: str, key: str, metadata: dict, source_sidecar: dict | None = None) -> dict:
        """Make `key` a copy of the object at `source` (a server-side copy on S3, a hard link on a
        local disk: objects are never written in place, so the two stay independent) with a sidecar
        of the source's (`source_sidecar` when the caller read it already), updated by `metadata`;
        return the sidecar."""
        sidecar = {**(source_sidecar or self.metadata(source)), **metadata, "key": key, "carried_from": source,
                   "written_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
        target = self._path(key)
        if isinstance(self.fs, LocalFileSystem):
            self._link_local(self._path(source), target)
        else:
            self.fs.copy(self._path(source), target)
        # like a new object's (`put`): nobody lists the object before its sidecar exists
        self._write_whole(target + SIDECAR_SUFFIX, json.dumps(sidecar, sort_keys=True, default=str).encode(), new_may_be_direct=True)
        return sidecar

    def _link_local(self, source: str, target: str) -> None:
        folder = os.path.dirname(target)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        try:
            os.link(source, target)
        except FileExistsError:  # carried before (a resume): replace it
            os.unlink(target)
            os.link(source, target)
        except OSError:  # another file system: a copy
            self.fs.copy(source, target)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object and sidecar under `prefix`, a batch at a time (one request per
        1,000 keys on S3); return how many objects went."""
        path = self._path(prefix, prefix=True)
        self.invalidate(path)
        objects = 0
        batch: list[str] = []
        for file, _info in walk(self.fs, path):
            objects += not file.endswith((SIDECAR_SUFFIX, PARTIAL_SUFFIX))
            batch.append(file)
            if len(batch) == TRANSFER_BATCH:
                self._remove(batch)
                batch = []
        if batch:
            self._remove(batch)
        return objects

    def _remove(self, paths: list[str]) -> None:
        """Remove these files; one another process removed first (a second prune, a cleanup) is
        gone as wanted, not an error."""
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)

    def remove_partials(self, prefix: str) -> int:
        """Remove the half-written files a killed process left under `prefix` (a local store
        writes each file beside its name first; S3 has none); return how many went."""
        if not self.is_local:
            return 0
        partials = [path for path, _info in walk(self.fs, self._path(prefix, prefix=True)) if path.endswith(PARTIAL_SUFFIX)]
        for path in partials:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(partials)

    def delete_keys(self, keys: list[str]) -> int:
        """Remove these objects and their sidecars, a batch at a time; return how many objects."""
        paths = [path for key in keys for path in (self._path(key), self._path(key) + SIDECAR_SUFFIX)]
        for start in range(0, len(paths), TRANSFER_BATCH):
            self._remove(paths[start : start + TRANSFER_BATCH])
        return len(keys)

    # --- reading -----------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        try:
            return self._read(self._path(key))
        except FileNotFoundError:
            raise NotFoundError(f"no object at {key}") from None

    def _read(self, path: str) -> bytes:
        """A whole file: straight from the disk when local (fsspec's layers cost more than the read
        of a small object), else through the filesystem."""
        if self.is_local:
            with open(path, "rb") as file:
                return file.read()
        return self.fs.cat_file(path)

    def metadata(self, key: str) -> dict:
        """The sidecar of `key`; NotFoundError when it is missing or unreadable (a torn write)."""
        try:
            return json.loads(self._read(self._path(key) + SIDECAR_SUFFIX))
        except FileNotFoundError:
            raise NotFoundError(f"no object at {key}") from None
        except ValueError:
            raise NotFoundError(f"the sidecar of {key} is unreadable (an unfinished write?)") from None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key) + SIDECAR_SUFFIX)

    def invalidate(self, path: str | None = None) -> None:
        """Forget cached listings, to see what another process wrote."""
        self.fs.invalidate_cache(path)

    def _complete(self, prefix: str, recursive: bool = True) -> Iterator[tuple[str, dict, dict]]:
        """(path, object info, sidecar info) of every complete object under the folder `prefix`,
        in key order, streamed fresh from storage (`storage_listing`)."""
        return complete_objects(walk(self.fs, self._path(prefix, prefix=True), recursive))

    def objects(self, prefix: str, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Objects under `prefix` (recursively), in key order; sidecars are not objects."""
        for count, (path, info, _sidecar) in enumerate(self._complete(prefix), start=1):
            yield ObjectInfo(self._key(path), int(info.get("size") or 0), _modified(info))
            if limit is not None and count >= limit:
                return

    def browse(self, prefix: str) -> tuple[list[FolderInfo], list[ObjectInfo]]:
        """One level under `prefix`: its folders (with the objects below each) and its objects."""
        base = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
        folders: dict[str, FolderInfo] = {}
        files: list[ObjectInfo] = []
        for path, info, _sidecar in self._complete(base):
            key = self._key(path)
            head, sep, _rest = key[len(base) :].partition("/")
            if sep:
                folder = folders.setdefault(head, FolderInfo(base + head + "/"))
                folder.objects += 1
                folder.size += int(info.get("size") or 0)
            else:
                files.append(ObjectInfo(key, int(info.get("size") or 0), _modified(info)))
        return list(folders.values()), files

    def download(self, prefix: str, directory: str, callback=None) -> tuple[int, int]:
        """Copy every complete object under `prefix` and its sidecar into `directory`, keys kept as
        folders, a batch of objects at a time; return (objects, bytes). Each file is then named for
        what its sidecar says it holds (`.html`, `.md`, `.json`, ...: `file_extension`), the
        sidecar beside it as `<file>.meta.json`. `callback` is an fsspec Callback (a progress bar)."""
        objects = size = 0
        batch: list[str] = []
        for path, info, _sidecar in self._complete(prefix):
            objects, size = objects + 1, size + int(info.get("size") or 0)
            batch += [path, path + SIDECAR_SUFFIX]
            if len(batch) >= TRANSFER_BATCH:
                self._fetch(batch, directory, callback)
                batch = []
        if batch:
            self._fetch(batch, directory, callback)
        return objects, size

    def _fetch(self, remote: list[str], directory: str, callback) -> None:
        local = [os.path.join(directory, *self._key(p).split("/")) for p in remote]
        for folder in {os.path.dirname(p) for p in local}:
            os.makedirs(folder, exist_ok=True)
        self.fs.get(remote, local, **({"callback": callback} if callback is not None else {}))
        for name in local[::2]:  # objects; each one's sidecar follows it
            with open(name + SIDECAR_SUFFIX, "rb") as file:
                extension = file_extension(name, json.loads(file.read() or b"{}").get("content_type", ""))
            if extension:
                os.replace(name, name + extension)
                os.replace(name + SIDECAR_SUFFIX, name + extension + SIDECAR_SUFFIX)

    def watch(self, prefix: str, finished: Callable[[], bool], interval: float = 1.0) -> Iterator[ObjectInfo]:
        """Yield each object written under `prefix`, as it completes, until `finished()` is true.

        A write is an object's sidecar appearing or changing, so an object rewritten later (a
        replay) is reported again and an object never twice for one write. After `finished()` says
        so, one last look catches what was written in between.
        """
        seen: dict[str, tuple] = {}
        while True:
            done = finished()
            fresh = []
            for path, info, sidecar in self._complete(prefix):
                stamp = (_modified(sidecar), sidecar.get("size"), sidecar.get("ETag"))
                if seen.get(path) != stamp:
                    seen[path] = stamp
                    fresh.append(ObjectInfo(self._key(path), int(info.get("size") or 0), _modified(info)))
            yield from sorted(fresh, key=lambda o: (o.modified or _EPOCH, o.key))
            if done:
                return
            time.sleep(interval)

    def keys(self, prefix: str) -> list[str]:
        """Keys of the complete objects directly under `prefix` (one level), in key order."""
        return [self._key(path) for path, _info, _sidecar in self._complete(prefix, recursive=False)]


_EPOCH = datetime.fromtimestamp(0, UTC)


def _modified(info: dict) -> datetime | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return value if isinstance(value, datetime) else None



#: Error classes of the S3 stack (botocore, aiobotocore, aiohttp, urllib3) that say the endpoint
#: could not be reached or dropped the request: a storage outage, not a wrong key.
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectTimeout",
        "HTTPClientError", "ProxyConnectionError", "ResponseStreamingError", "ClientConnectorError", "ClientConnectionError",
        "ServerDisconnectedError", "ClientOSError", "ServerTimeoutError", "ClientPayloadError",
    }
)
_S3_STACK = ("botocore", "aiobotocore", "aiohttp", "urllib3", "s3fs")


def is_storage_fault(error: BaseException) -> bool:
    """Whether `error` is object storage failing for a while (a full disk, a bucket unreachable,
    a connection dropped, the service asking to slow down), which is waited out, rather than an
    answer (an object that is not there), which is not."""
    if isinstance(error, (FileNotFoundError, NotFoundError, IsADirectoryError, NotADirectoryError, InvalidKeyError)):
        return False
    if isinstance(error, (OSError, TimeoutError)):
        return True
    for cls in type(error).__mro__:
        if cls.__module__.partition(".")[0] in _S3_STACK and cls.__name__ in _TRANSIENT_NAMES:
            return True
    response = getattr(error, "response", None)  # botocore's ClientError: a 5xx or a throttle is passing
    if isinstance(response, dict):
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        code = (response.get("Error") or {}).get("Code", "")
        return status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "RequestTimeTooSkewed")
    return False
