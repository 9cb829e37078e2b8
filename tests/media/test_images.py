"""app/media: photos are cleaned in a sandboxed subprocess; what is stored has no metadata.

The files are made here with Pillow the way phones make them (EXIF with a GPS position and an
orientation tag, a comment, XMP, an ICC profile, PNG text), then the stored bytes are read
back: none of it may survive, and the photo must still stand the right way up.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from app.media import MediaRefused
from app.media.images import ImageRefused, clean_image
from app.media.sandbox import MediaSandbox

RED = (230, 20, 20)
WHITE = (255, 255, 255)
SECRET = b"Ward 7 bed 12 J. Smith"


def _exif_with_gps_and_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel X"  # Model
    exif[0x9003] = "2026:12:03 10:11:12"  # DateTimeOriginal (in the Exif IFD, written here flat)
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.5)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    return exif


def _phone_jpeg(path: Path, orientation: int = 6) -> None:
    """40 wide, 20 high as stored, a red block in the top-left corner. Orientation 6 means the
    camera was turned: a viewer rotates it 90° clockwise, so it shows 20 wide, 40 high, with
    the red block in the top-right corner."""
    im = Image.new("RGB", (40, 20), WHITE)
    im.paste(RED, (0, 0, 10, 10))
    im.save(path, "JPEG", quality=95, exif=_exif_with_gps_and_orientation(orientation), comment=SECRET,
            xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + SECRET + b"</x:xmpmeta>")


def _near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append(data[at + 4:at + 8])
        at += 12 + length
    return chunks


def _paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    return tmp_path / "upload", tmp_path / "clean", tmp_path / "thumb"


def test_a_phone_photo_loses_gps_device_time_comment_and_xmp_and_stays_upright(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    _phone_jpeg(source)
    original = source.read_bytes()
    assert b"Exif" in original and SECRET in original and b"PhoneModel" in original  # the test file has them

    result = clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=16)

    assert result == {"mime": "image/jpeg", "width": 20, "height": 40}
    stored = target.read_bytes()
    for trace in (b"Exif", b"PhoneMaker", b"PhoneModel", b"2026:12:03", SECRET, b"xmpmeta", b"http://ns.adobe.com/xap"):
        assert trace not in stored, trace
    with Image.open(target) as im:
        assert im.format == "JPEG" and im.size == (20, 40)
        assert not im.getexif() and "exif" not in im.info and "comment" not in im.info and "xmp" not in im.info
        assert "icc_profile" not in im.info
        rgb = im.convert("RGB")
        assert _near(rgb.getpixel((15, 4)), RED)  # the red corner turned to the top right
        assert _near(rgb.getpixel((4, 4)), WHITE)
    with Image.open(thumb) as t:
        assert t.format == "JPEG" and max(t.size) == 16 and t.size == (8, 16)
        assert b"Exif" not in thumb.read_bytes()


def test_png_text_chunks_and_colour_profile_are_dropped_and_the_colours_kept(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("Description", "patient photo", zip=True)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.new("RGBA", (30, 30), (*RED, 255))
    im.paste((0, 0, 0, 0), (0, 0, 10, 10))
    im.save(source, "PNG", pnginfo=info, icc_profile=srgb)
    assert {b"tEXt", b"iTXt", b"iCCP"} <= set(_png_chunks(source.read_bytes()))

    result = clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=640)

    assert result == {"mime": "image/png", "width": 30, "height": 30}
    stored = target.read_bytes()
    chunks = set(_png_chunks(stored))
    assert chunks <= {b"IHDR", b"IDAT", b"IEND"}, chunks
    assert SECRET not in stored
    with Image.open(target) as out:
        assert out.mode == "RGBA"
        assert _near(out.getpixel((20, 20)), (*RED, 255), 4)  # sRGB to sRGB: the same colour
        assert out.getpixel((2, 2))[3] == 0  # transparency kept


def test_a_photo_with_more_pixels_than_allowed_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    # A PNG whose header says 60,000 × 60,000 (3.6 gigapixels) with almost no data: a bomb.
    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    source.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    started = time.monotonic()
    with pytest.raises(ImageRefused) as refused:
        clean_image(source, target, thumb, max_pixels=64_000_000, thumb_px=640)
    assert refused.value.code == "too_many_pixels"
    assert time.monotonic() - started < 1.0
    assert not target.exists() and not thumb.exists()

    # Just over the limit (not twice it, where Pillow itself would refuse): still refused.
    Image.new("RGB", (101, 100), WHITE).save(source, "PNG")
    with pytest.raises(ImageRefused) as refused:
        clean_image(source, target, thumb, max_pixels=10_000, thumb_px=640)
    assert refused.value.code == "too_many_pixels"


@pytest.mark.parametrize("content", [
    b"<html><script>alert(1)</script></html>",
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    b"%PDF-1.7\n",
    b"\xff\xd8\xff\xe0 truncated jpeg",
    b"",
])
def test_anything_but_a_whole_jpeg_png_or_webp_is_refused(tmp_path: Path, content: bytes) -> None:
    source, target, thumb = _paths(tmp_path)
    source.write_bytes(content)
    with pytest.raises(ImageRefused) as refused:
        clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=640)
    assert refused.value.code == "damaged"
    assert "JPEG, PNG or WebP" in refused.value.message


def test_webp_stays_webp_without_metadata(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    Image.new("RGB", (24, 12), RED).save(source, "WEBP", exif=_exif_with_gps_and_orientation(1), lossless=True)
    assert b"EXIF" in source.read_bytes()
    assert clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=640) == {"mime": "image/webp", "width": 24, "height": 12}
    stored = target.read_bytes()
    assert b"EXIF" not in stored and b"PhoneModel" not in stored


async def test_the_sandbox_cleans_in_a_subprocess_and_passes_refusals_on(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    _phone_jpeg(source)
    sandbox = MediaSandbox(concurrency=1, timeout=30.0)
    result = await sandbox.clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=32)
    assert result == {"mime": "image/jpeg", "width": 20, "height": 40}
    assert b"Exif" not in target.read_bytes() and thumb.stat().st_size > 0

    source.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(MediaRefused) as refused:
        await sandbox.clean_image(source, tmp_path / "t2", tmp_path / "th2", max_pixels=10_000_000, thumb_px=32)
    assert refused.value.code == "damaged"


async def test_a_worker_that_takes_too_long_is_killed_and_the_file_refused(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    _phone_jpeg(source)
    sandbox = MediaSandbox(concurrency=1, timeout=0.01)  # less than a Python start-up
    with pytest.raises(MediaRefused) as refused:
        await sandbox.clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=32)
    assert refused.value.code == "timeout"
    assert not target.exists()


async def test_a_worker_that_hits_its_memory_limit_fails_closed(tmp_path: Path) -> None:
    source, target, thumb = _paths(tmp_path)
    # 4000 × 4000 RGB needs 48 MB of pixels (and more for the copies); 40 MiB of address space
    # is not even enough for the interpreter and Pillow: the worker dies, the server does not.
    Image.new("RGB", (4000, 4000), RED).save(source, "PNG")
    sandbox = MediaSandbox(concurrency=1, timeout=30.0, memory_bytes=40 * 2**20)
    with pytest.raises(MediaRefused) as refused:
        await sandbox.clean_image(source, target, thumb, max_pixels=64_000_000, thumb_px=32)
    assert refused.value.code == "failed"
    assert "could not be processed" in refused.value.message


def test_the_cleaned_bytes_decode_to_the_same_picture(tmp_path: Path) -> None:
    """Re-encoding must not damage what a clinician looks at: a PNG comes back pixel-exact."""
    source, target, thumb = _paths(tmp_path)
    im = Image.new("RGB", (64, 48))
    im.putdata([((x * 4) % 256, (y * 5) % 256, (x * y) % 256) for y in range(48) for x in range(64)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    source.write_bytes(buf.getvalue())
    clean_image(source, target, thumb, max_pixels=10_000_000, thumb_px=640)
    with Image.open(target) as out:
        assert out.convert("RGB").tobytes() == im.tobytes()
