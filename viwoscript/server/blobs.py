"""Files served at ``/blobs``: uploads and the images jobs produce, content-addressed and per user.

``POST /blobs`` (raw body or a multipart ``file`` field, at most ``max_upload_size`` bytes, an image Pillow
can identify) → ``{sha256, url, width, height}``. ``GET /blobs/{sha256}.{ext}`` serves a file only to a user
who uploaded or produced it (or whose entity store holds it); otherwise 404, the same answer as for a
file that does not exist. Scripts name an upload ``blob:{sha256}``.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from ..io.files import atomic_write

HASH_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^([0-9a-f]{64})(?:\.([a-z0-9]{1,5}))?$")
FORMAT_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif", "bmp": "image/bmp"}
#: Largest image (pixels) an upload may declare.
MAX_UPLOAD_PIXELS = 64 * 1024 * 1024


class UploadError(Exception):
    pass


class BlobFiles:
    """The server's file folder (``<data>/files/ab/abcdef….ext``) plus ownership rows in the job store."""

    def __init__(self, root: Path, jobs, user_store):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs
        self.user_store = user_store  # callable: user -> Store

    def path(self, digest: str, ext: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{ext}"

    def put(self, owner: str, data: bytes, ext: str, width: int | None, height: int | None) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest, ext)
        if not path.exists():
            atomic_write(path, data)
        self.jobs.add_file(digest, owner, ext, len(data), width, height)
        return {"sha256": digest, "url": f"/blobs/{digest}.{ext}", "width": width, "height": height}

    def put_upload(self, owner: str, data: bytes) -> dict:
        """Check that ``data`` is an image and keep it (its bytes unchanged: embedded metadata stays)."""
        from PIL import Image as PILImage

        formats = tuple(FORMAT_EXT)  # those this server stores and serves under their own type
        try:
            with PILImage.open(io.BytesIO(data), formats=formats) as im:
                fmt, (w, h) = im.format, im.size
        except Exception as e:  # noqa: BLE001 - any failure to identify means "not an image we take"
            raise UploadError(f"not an image this server accepts ({type(e).__name__}); "
                              f"formats: {', '.join(formats)}") from None
        if w * h > MAX_UPLOAD_PIXELS:
            raise UploadError(f"image of {w}×{h} pixels exceeds the limit of {MAX_UPLOAD_PIXELS} pixels")
        return self.put(owner, data, FORMAT_EXT.get(fmt, "png"), w, h)

    def put_image(self, owner: str, image, *, script: Any = None, args: Any = None) -> dict:
        """A job's Image as a PNG with its metadata (script, args, seeds) embedded."""
        from ..io import encode_image

        data = encode_image(image, "PNG", script=script, args=args)
        return self.put(owner, data, "png", image.width, image.height)

    def find(self, owner: str, digest: str) -> tuple[Path, str] | None:
        """``(path, mime)`` of a file ``owner`` may read, else None."""
        if not HASH_RE.match(digest):
            return None
        row = self.jobs.file(digest, owner)
        if row is not None:
            path = self.path(digest, row["ext"])
            if path.is_file():
                return path, MIME.get(row["ext"], "application/octet-stream")
        store = self.user_store(owner, create=False)
        if store is not None:
            path = store.blob_path(digest)
            if path.is_file():
                return path, "image/png"
        return None
