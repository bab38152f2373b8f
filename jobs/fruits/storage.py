"""Small objects on any filesystem the pipeline uses: local paths, ``file:`` URIs, ``s3://``.

Spark writes the data (Parquet, Spark ML models) with its own committer; this module does the
rest through ``pyarrow.fs`` — pointers, reports, plots, listings, deletions — with no JVM call.
Every operation is counted in :data:`OPERATIONS`, so tests and the benchmark can show what a
publication costs in object-store requests. There is deliberately no rename or copy here:
publishing never moves data (see :mod:`fruits.catalog`).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import Counter
from typing import Any, cast

import pyarrow.fs as pafs

# Object-store requests made through this module, by kind: "put", "get", "list", "delete".
OPERATIONS: Counter[str] = Counter()


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    """The filesystem path of a local path, ``file:/x`` or ``file:///x`` URI."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return uri.removeprefix("file:")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it, for a local path or a URI (``s3://``)."""
    if uri.startswith("file:") or "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(local_path(uri))
    normalised = uri.replace("s3a://", "s3://").replace("s3n://", "s3://")
    return cast("tuple[pafs.FileSystem, str]", pafs.FileSystem.from_uri(normalised))


def join(base: str, *parts: str) -> str:
    """``base/part1/part2`` with single slashes."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))])


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    OPERATIONS["get"] += 1
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def is_dir(uri: str) -> bool:
    fs, path = filesystem(uri)
    OPERATIONS["get"] += 1
    return bool(fs.get_file_info(path).type == pafs.FileType.Directory)


def read_bytes(uri: str) -> bytes:
    """The whole object; FileNotFoundError when there is none."""
    fs, path = filesystem(uri)
    OPERATIONS["get"] += 1
    with fs.open_input_stream(path) as stream:
        return cast(bytes, stream.read())


def write_bytes(uri: str, data: bytes) -> None:
    """Write one object so that readers see the old content or the new, never a part.

    On S3 a PUT is atomic. Locally the bytes go to a temporary sibling first, then replace the
    target in one rename of that single small file (POSIX ``rename`` is atomic).
    """
    fs, path = filesystem(uri)
    OPERATIONS["put"] += 1
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = os.path.join(os.path.dirname(path), f".{uuid.uuid4().hex}.tmp")
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        return
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def write_json(uri: str, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    write_bytes(uri, text.encode("utf-8") + b"\n")


def read_json(uri: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(read_bytes(uri).decode("utf-8")))


def children(uri: str) -> list[str]:
    """Names of the entries directly under ``uri`` (empty when it does not exist)."""
    fs, path = filesystem(uri)
    OPERATIONS["list"] += 1
    selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
    return sorted(info.base_name for info in fs.get_file_info(selector))


def delete_tree(uri: str) -> None:
    """Delete a folder and everything under it (no error when it is already gone)."""
    fs, path = filesystem(uri)
    OPERATIONS["delete"] += 1
    with contextlib.suppress(FileNotFoundError):
        fs.delete_dir(path)


def check_writable(uri: str) -> None:
    """Raise OSError with a one-line reason when ``uri`` cannot hold outputs."""
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise OSError(f"output {uri} is a file, not a folder")
    probe = join(uri, f"_write-probe-{uuid.uuid4().hex}")
    try:
        write_bytes(probe, b"")
        fs.delete_file(filesystem(probe)[1])
    except OSError as error:
        raise OSError(f"output {uri} is not writable ({error.strerror or error})") from None
