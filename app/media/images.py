"""Photos, cleaned: decoded with a pixel limit, turned upright, re-encoded with no metadata.

Runs inside the media worker (``app/media/worker.py``), never in the server; imports nothing
of the app (the worker runs it with ``python -I``, without loading the app). What leaves is a
new image made from the decoded pixels only: no EXIF (GPS position, device, time), no XMP,
no IPTC, no comments, no colour profile or text chunks; the EXIF orientation is applied to
the pixels first, so the photo still stands the right way up.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageOps


class ImageRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_SAVE: dict[str, dict[str, Any]] = {
    "JPEG": {"format": "JPEG", "quality": 88, "optimize": True},
    "PNG": {"format": "PNG", "optimize": True},
    "WEBP": {"format": "WEBP", "quality": 88},
}
_NOT_AN_IMAGE = "The photo could not be read: it is damaged or not a JPEG, PNG or WebP image."


def clean_image(source: Path, target: Path, thumbnail: Path, *, max_pixels: int, thumb_px: int) -> dict[str, Any]:
    """Write the cleaned image to ``target`` and a thumbnail (JPEG, at most ``thumb_px`` on
    its longer side) to ``thumbnail``; return its format's MIME type and size."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source, formats=list(FORMATS)) as opened:
                fmt = opened.format or ""
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageRefused("too_many_pixels", f"The photo is too large ({width} × {height} pixels).")
                opened.load()
                icc = opened.info.get("icc_profile")
                upright = ImageOps.exif_transpose(opened)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageRefused("too_many_pixels", "The photo is too large to open.") from None
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, ImageRefused):
                raise
            raise ImageRefused("damaged", _NOT_AN_IMAGE) from None
    mode = upright.mode if upright.mode in ("RGB", "RGBA", "L", "LA") else ("RGBA" if "A" in upright.getbands() else "RGB")
    if fmt == "JPEG" and mode not in ("RGB", "L"):
        mode = "RGB"
    pixels = upright.convert(mode)
    if icc:
        pixels = _to_srgb(pixels, icc)
    # A new image from the pixels alone: nothing of the original's ``info`` (EXIF, ICC, XMP,
    # comments, PNG text) can reach the saved file, whatever Pillow's savers copy by default.
    fresh = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    fresh.save(target, **_SAVE[fmt])
    thumb = fresh.convert("RGB") if fresh.mode != "RGB" else fresh.copy()
    thumb.thumbnail((thumb_px, thumb_px))
    thumb.save(thumbnail, **_SAVE["JPEG"])
    return {"mime": FORMATS[fmt], "width": fresh.width, "height": fresh.height}


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """The pixels in sRGB, so the colours stay right once the profile is dropped (a wound's
    redness is clinical). A profile that cannot be read is ignored: the pixels go as they are."""
    if im.mode not in ("RGB", "RGBA"):
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode=im.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im
    return converted if converted is not None else im
