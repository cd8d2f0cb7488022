"""Streamed listings of object storage, in key order, with each object paired to its sidecar.

Nothing here loads a whole listing: S3 is read a page (1,000 keys) at a time with plain
`list_objects_v2` calls (no s3fs listing cache, so a long-lived process sees what another process
wrote); a local folder tree is read one directory at a time, children sorted so that full paths
come out in the same lexicographic order S3 uses. Pairing relies on that order: an object `X`'s
sidecar `X.meta.json` comes after it and before anything not starting with `X`, so only the few
objects between the two wait in memory.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator

from fsspec.implementations.local import LocalFileSystem

SIDECAR_SUFFIX = ".meta.json"
PARTIAL_SUFFIX = ".partial"
#: Keys per S3 listing request (S3's own maximum).
PAGE_SIZE = 1000


def walk(fs, folder: str, recursive: bool = True) -> Iterator[tuple[str, dict]]:
    """(path, info) of every file under `folder`, in key order; info has `size` and `mtime` or
    `LastModified` (and `ETag` on S3)."""
    if isinstance(fs, LocalFileSystem):
        yield from _walk_local(folder, recursive)
    else:
        yield from _walk_s3(fs, folder, recursive)


def _walk_local(folder: str, recursive: bool) -> Iterator[tuple[str, dict]]:
    try:
        with os.scandir(folder) as listing:
            entries = [(entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry) for entry in listing]
    except (FileNotFoundError, NotADirectoryError):
        return
    for name, entry in sorted(entries, key=lambda pair: pair[0]):
        if name.endswith("/"):
            if recursive:
                yield from _walk_local(entry.path, recursive)
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since the directory was read
            continue
        yield entry.path, {"size": stat.st_size, "mtime": stat.st_mtime}


def _walk_s3(fs, folder: str, recursive: bool) -> Iterator[tuple[str, dict]]:
    bucket, key, _version = fs.split_path(folder)
    request = {"Bucket": bucket, "Prefix": f"{key}/" if key else "", "MaxKeys": PAGE_SIZE}
    if not recursive:
        request["Delimiter"] = "/"
    while True:
        page = fs.call_s3("list_objects_v2", **request)
        for item in page.get("Contents", []):
            yield f"{bucket}/{item['Key']}", {"size": item["Size"], "LastModified": item["LastModified"], "ETag": item.get("ETag")}
        if not page.get("IsTruncated"):
            return
        request["ContinuationToken"] = page["NextContinuationToken"]


def complete_objects(entries: Iterator[tuple[str, dict]]) -> Iterator[tuple[str, dict, dict]]:
    """(path, object info, sidecar info) of each object whose sidecar is there, in key order, from
    a key-ordered listing. An object without a sidecar (an unfinished write), a sidecar without its
    object and a temporary `.partial` file are left out."""
    waiting: deque[tuple[str, dict]] = deque()  # objects whose sidecar may still come, in key order
    waiting_paths: set[str] = set()
    sidecars: dict[str, dict] = {}
    for path, info in entries:
        if path.endswith(SIDECAR_SUFFIX):
            owner = path[: -len(SIDECAR_SUFFIX)]
            if owner in waiting_paths:
                sidecars[owner] = info
        elif not path.endswith(PARTIAL_SUFFIX):
            waiting.append((path, info))
            waiting_paths.add(path)
        while waiting:  # the head is decided once its sidecar came or the listing went past it
            head, head_info = waiting[0]
            if head in sidecars:
                yield head, head_info, sidecars.pop(head)
            elif path <= head + SIDECAR_SUFFIX:
                break
            waiting.popleft()
            waiting_paths.discard(head)
    for head, head_info in waiting:
        if head in sidecars:
            yield head, head_info, sidecars[head]
