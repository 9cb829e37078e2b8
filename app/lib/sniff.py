"""What a shared file is, from its bytes: an allow-list sniffer (issue 11, first slice).

Never the name's extension or the client's ``Content-Type``: both are the sender's say.
``sniff_head(head)`` looks at the first bytes (``HEAD_BYTES``) and answers with the type it
can only be (JPEG, PNG, WebP, HEIC, PDF, UTF-8 text, or a ZIP that may be an office
document) or refuses with a reason a person can read. Two checks need more than the head and
are separate: ``TextCheck`` (strict UTF-8 over every chunk as it arrives) and
``check_office(path)`` (the ZIP's central directory: a Word, Excel or PowerPoint file without
macros, ActiveX, embedded objects or remote templates). Decoding the file (images, PDFs) is the
media sandbox's work, not this module's: a file that sniffs as JPEG is only a candidate.

Allowed is a short list on purpose; everything else (programs, scripts, HTML, SVG, XML,
archives, legacy OLE documents, empty and unknown files) is refused.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

HEAD_BYTES = 8192

# Brands of an ISO-BMFF ``ftyp`` box that mean HEIF/HEIC stills; AVIF is not on the list.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Text that a browser or an office suite would take for markup.
_MARKUP = re.compile(rb"^\s*<\s*(!doctype|html|svg|\?xml|script|head|body|iframe|xml)\b", re.IGNORECASE)
# Control characters a text file may hold: tab, line feed, form feed, carriage return.
_ALLOWED_CONTROLS = {0x09, 0x0A, 0x0C, 0x0D}
_CONTROL = re.compile("[" + "".join(chr(c) for c in range(0x20) if c not in _ALLOWED_CONTROLS) + "\x7f]")


@dataclass(frozen=True)
class FileType:
    kind: str  # image | pdf | text | document
    mime: str
    extension: str  # what the download's name ends with, whatever the sender called it


JPEG = FileType("image", "image/jpeg", "jpg")
PNG = FileType("image", "image/png", "png")
WEBP = FileType("image", "image/webp", "webp")
HEIC = FileType("image", "image/heic", "heic")  # converted to JPEG by the media sandbox
PDF = FileType("pdf", "application/pdf", "pdf")
TEXT = FileType("text", "text/plain; charset=utf-8", "txt")
# A ZIP: an office document only if check_office() says which.
OFFICE_CANDIDATE = FileType("document", "application/zip", "zip")
DOCX = FileType("document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
XLSX = FileType("document", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
PPTX = FileType("document", "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx")


class Refused(ValueError):
    """The file is not one we share; ``code`` for logs and audits, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_PROGRAM = "Programs and scripts cannot be shared."
_ALLOWED_ONLY = "Only photos (JPEG, PNG, WebP, HEIC), PDFs, text and Office documents can be shared."
_REFUSED_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"MZ", "program", _PROGRAM),  # Windows executables and DLLs
    (b"\x7fELF", "program", _PROGRAM),
    (b"\xfe\xed\xfa\xce", "program", _PROGRAM),  # Mach-O
    (b"\xfe\xed\xfa\xcf", "program", _PROGRAM),
    (b"\xcf\xfa\xed\xfe", "program", _PROGRAM),
    (b"\xce\xfa\xed\xfe", "program", _PROGRAM),
    (b"\xca\xfe\xba\xbe", "program", _PROGRAM),  # Mach-O universal, Java classes
    (b"#!", "program", _PROGRAM),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "program", "Windows shortcuts cannot be shared."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy_office", "Old Office files (.doc, .xls, .ppt) cannot be shared: save them as .docx, .xlsx or .pptx."),
    (b"Rar!", "archive", "Archives cannot be shared: send the files themselves."),
    (b"7z\xbc\xaf\x27\x1c", "archive", "Archives cannot be shared: send the files themselves."),
    (b"\x1f\x8b", "archive", "Archives cannot be shared: send the files themselves."),
)


def sniff_head(head: bytes) -> FileType:
    """The one allowed type the file's first bytes can be, or ``Refused``.

    ``head`` is the start of the file (``HEAD_BYTES`` or all of a shorter file). A ZIP
    comes back as ``OFFICE_CANDIDATE`` (``check_office`` decides), text as ``TEXT`` once
    its head is clean UTF-8 (``TextCheck`` must see the rest)."""
    if not head:
        raise Refused("empty", "The file is empty.")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(len(head), int.from_bytes(head[:4], "big")), 4)}
        if brands & _HEIF_BRANDS and not brands & _AVIF_BRANDS:
            return HEIC
        raise Refused("unknown", _ALLOWED_ONLY)
    if head.startswith(b"%PDF-"):
        return PDF  # at 0 only: readers accept it further in, which is how polyglots work
    if head.startswith(b"PK\x03\x04"):
        return OFFICE_CANDIDATE
    for magic, code, message in _REFUSED_MAGIC:
        if head.startswith(magic):
            raise Refused(code, message)
    check = TextCheck()
    check.feed(head, final=len(head) < HEAD_BYTES)
    return TEXT


class TextCheck:
    """Strict UTF-8 text, chunk by chunk: no NUL or other control characters but tab, line
    feed, form feed and carriage return, and no markup at the start (HTML, SVG, XML)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._started = False

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        if not self._started:
            start = chunk.removeprefix(b"\xef\xbb\xbf")
            if _MARKUP.match(start):
                raise Refused("markup", "Web pages, SVG and XML files cannot be shared.")
            self._started = bool(start.strip())
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            raise Refused("unknown", _ALLOWED_ONLY) from None
        if _CONTROL.search(text):
            raise Refused("unknown", _ALLOWED_ONLY)


# -- Office documents -----------------------------------------------------------------------

_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_MAIN_PARTS = {
    "/word/document.xml": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", DOCX),
    "/xl/workbook.xml": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", XLSX),
    "/ppt/presentation.xml": ("application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml", PPTX),
}
# Relationship types that fetch or run something from elsewhere when the file opens.
_REMOTE_TYPES = ("/oleObject", "/attachedTemplate", "/frame", "/subDocument")
MAX_ENTRIES = 5000
MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 100
MAX_XML_PART = 1024 * 1024
_ACTIVE = "Office files with macros, ActiveX controls, embedded objects or remote templates cannot be shared."
_NOT_OFFICE = "Archives cannot be shared: send the files themselves."


def check_office(path: Path) -> FileType:
    """A ZIP that is a Word, Excel or PowerPoint document without active content, or ``Refused``.

    Read from the central directory (never the local headers, which a crafted file can make
    say something else), with limits on entries, size and compression ratio (ZIP bombs)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise Refused("archive", _NOT_OFFICE)
            total = 0
            for info in infos:
                total += info.file_size
                if total > MAX_UNCOMPRESSED or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO):
                    raise Refused("bomb", "The file unpacks to far more than its size: it cannot be shared.")
                name = info.filename.lower()
                if name.endswith("vbaproject.bin") or "/activex/" in f"/{name}" or (name.endswith(".bin") and "/embeddings/" in f"/{name}"):
                    raise Refused("active_content", _ACTIVE)
            names = {info.filename for info in infos}
            if "[Content_Types].xml" not in names:
                raise Refused("archive", _NOT_OFFICE)
            found = _main_part(_xml(archive, "[Content_Types].xml"))
            for rels in (n for n in names if n.endswith(".rels")):
                for rel in _xml(archive, rels).iter(f"{_RELS}Relationship"):
                    if rel.get("TargetMode") == "External" and rel.get("Type", "").endswith(_REMOTE_TYPES):
                        raise Refused("active_content", _ACTIVE)
            return found
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ParseError, DefusedXmlException, KeyError, ValueError, RuntimeError, NotImplementedError) as exc:
        if isinstance(exc, Refused):
            raise
        raise Refused("damaged", "The file is damaged or not an Office document.") from None


def _xml(archive: zipfile.ZipFile, name: str) -> Element:
    with archive.open(name) as part:
        data = part.read(MAX_XML_PART + 1)
    if len(data) > MAX_XML_PART:
        raise Refused("damaged", "The file is damaged or not an Office document.")
    return fromstring(data, forbid_dtd=True)  # defusedxml: no entities, no DTD


def _main_part(types: Element) -> FileType:
    overrides = {o.get("PartName", ""): o.get("ContentType", "") for o in types.iter(f"{_CT}Override")}
    if any("macroEnabled" in t or "vbaProject" in t or "ms-office.activeX" in t for t in overrides.values()):
        raise Refused("active_content", _ACTIVE)
    if any("vbaProject" in (d.get("ContentType") or "") for d in types.iter(f"{_CT}Default")):
        raise Refused("active_content", _ACTIVE)
    found = [kind for part, (content_type, kind) in _MAIN_PARTS.items() if overrides.get(part) == content_type]
    if len(found) != 1:
        raise Refused("archive", _NOT_OFFICE)
    return found[0]
