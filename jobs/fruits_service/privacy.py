"""GDPR: by default photos live in memory for the request only and no EXIF (GPS included) is
ever logged. Two settings opt in, for a deployment that has a legal basis and says so to users:

* ``FRUITS_SERVICE_KEEP_PHOTOS_DIR``: keep each upload, byte for byte (EXIF included), with
  the answer beside it (``<dir>/<UTC date>/<request id>.<ext>`` and ``.json``);
* ``FRUITS_SERVICE_LOG_EXIF``: log each upload's EXIF tags, GPS included, at INFO.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

log = logging.getLogger(__name__)

# Pillow logs each EXIF tag it parses, value included, at DEBUG (PIL.TiffImagePlugin): a service
# run at DEBUG would log camera serials and GPS positions. Pillow's loggers stay at INFO.
logging.getLogger("PIL").setLevel(logging.INFO)

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}


def notice(keeps_photos: bool) -> str:
    """What the page tells its users about their photos."""
    if keeps_photos:
        return "Your photo and its answer are kept by this service to improve it."
    return "Your photo is used to answer, then forgotten: it is not stored."


def exif_tags(image: Image.Image) -> dict[str, str]:
    """Readable EXIF tags of an opened image, the GPS ones included."""
    exif = image.getexif()
    tags = {ExifTags.TAGS.get(k, str(k)): str(v) for k, v in exif.items()}
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    tags |= {f"GPS{ExifTags.GPSTAGS.get(k, str(k))}": str(v) for k, v in gps.items()}
    return tags


def log_exif(request_id: str, image: Image.Image) -> None:
    log.info("upload %s EXIF (FRUITS_SERVICE_LOG_EXIF is on): %s", request_id, exif_tags(image))


def keep_photo(folder: str, request_id: str, data: bytes, fmt: str, answer: dict[str, Any]) -> None:
    """Write the upload and its answer under ``folder`` (only when the deployment opted in)."""
    day = Path(folder) / dt.datetime.now(dt.UTC).date().isoformat()
    day.mkdir(parents=True, exist_ok=True)
    (day / f"{request_id}.{EXTENSIONS.get(fmt, 'bin')}").write_bytes(data)
    (day / f"{request_id}.json").write_text(json.dumps(answer, ensure_ascii=False, indent=2))
