"""The photo in a request body, read in memory only (never spooled to disk) and size-limited.

Accepted: ``multipart/form-data`` (the first file part, e.g. a form's ``photo`` field) or the
raw photo as the body (``image/jpeg``, ``application/octet-stream``, …).
"""

from __future__ import annotations

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from fruits_service.errors import ApiError


def too_large(limit: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"the upload exceeds the limit of {limit / 2**20:.0f} MiB"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def first_file_part(body: bytes, content_type: str) -> bytes:
    """The content of the first non-empty file part of a form, else of its ``photo`` field."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_request", "multipart/form-data without a boundary")
    parts: list[tuple[bytes, bytearray]] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    current: dict[bytes, bytes] = {}

    def on_part_begin() -> None:
        current.clear()
        parts.append((b"", bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        current[bytes(header["field"]).lower()] = bytes(header["value"])
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        parts[-1] = (current.get(b"content-disposition", b""), parts[-1][1])

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types
        raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from exc
    files = [data for disposition, data in parts if b"filename=" in disposition]
    named = [data for disposition, data in parts if _field_name(disposition) == b"photo"]
    chosen = [data for data in (*files, *named) if data]
    if not chosen:
        raise ApiError(400, "missing_photo", "the form has no photo: send it as a file part")
    return bytes(chosen[0])


def _field_name(disposition: bytes) -> bytes | None:
    return parse_options_header(disposition)[1].get(b"name")


async def read_photo(request: Request, limit: int) -> bytes:
    """The uploaded photo's bytes (multipart or raw body)."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return first_file_part(body, content_type)
    if not body:
        raise ApiError(400, "missing_photo", "empty body: send a photo (multipart or raw)")
    return body
