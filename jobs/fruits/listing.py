"""List the files under an input root, exactly as they are: no glob, no link followed.

One call per root, no per-file JVM round trip: local folders are walked with ``os.scandir``
(``lstat``: a symbolic link is reported as a link, never followed, so a link loop or a link out
of the input cannot add files), S3 prefixes are listed by ``pyarrow.fs`` (paginated
ListObjectsV2). The root is taken literally: ``photos[1]`` is that folder, not a pattern.

Paths are written the way Spark's ``binaryFile`` source writes them (``file:/abs/path``,
``s3://bucket/key``), so listed and loaded rows join on ``path``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs

from fruits import storage

FILE = "file"
SYMLINK = "symlink"
OTHER = "other"  # device, socket, fifo: never read


@dataclass(frozen=True)
class Listed:
    """One entry under an input root."""

    path: str  # URI as Spark writes it
    length: int
    modification_ms: int
    kind: str  # FILE, SYMLINK or OTHER


def spark_path(uri: str) -> str:
    """The form Spark's file sources give a path: ``file:/abs/path`` for local files."""
    if storage.is_local(uri):
        return "file:" + os.path.abspath(storage.local_path(uri))
    return uri.replace("s3a://", "s3://").replace("s3n://", "s3://")


def list_root(root: str) -> Iterator[Listed]:
    """Every entry under ``root`` (a folder, a prefix or a single file), recursively."""
    if storage.is_local(root):
        yield from _list_local(os.path.abspath(storage.local_path(root)))
    else:
        yield from _list_object_store(root)


def root_exists(root: str) -> bool:
    """Whether ``root`` names an existing folder, prefix or file (taken literally)."""
    if storage.is_local(root):
        return os.path.lexists(storage.local_path(root))
    fs, path = storage.filesystem(root)
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def _entry(path: str, status: os.stat_result) -> Listed:
    if stat.S_ISLNK(status.st_mode):
        kind = SYMLINK
    elif stat.S_ISREG(status.st_mode):
        kind = FILE
    else:
        kind = OTHER
    return Listed("file:" + path, status.st_size, status.st_mtime_ns // 1_000_000, kind)


def _list_local(root: str) -> Iterator[Listed]:
    status = os.lstat(root)
    if not stat.S_ISDIR(status.st_mode):
        yield _entry(root, status)
        return
    folders = [root]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                status = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(status.st_mode):
                    folders.append(entry.path)
                else:
                    yield _entry(entry.path, status)


def _list_object_store(root: str) -> Iterator[Listed]:
    fs, path = storage.filesystem(root)
    scheme = root.split("://", 1)[0].replace("s3a", "s3").replace("s3n", "s3")
    info = fs.get_file_info(path)
    infos = [info] if info.type == pafs.FileType.File else []
    if info.type == pafs.FileType.Directory:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    for item in infos:
        if item.type == pafs.FileType.File:
            mtime = int(item.mtime.timestamp() * 1000) if item.mtime else 0
            yield Listed(f"{scheme}://{item.path}", item.size or 0, mtime, FILE)
