"""A shared file's name, as shown and as downloaded (issue 11, first slice).

The name a sender's device gives is a label, never a path and never the type: ``display_name``
keeps its last component, drops what draws nothing or could mislead (controls, bidirectional
overrides that make ``invoice\u202efdp.exe`` read as ``invoiceexe.pdf``), bounds its length,
and makes it end with an extension of the type the bytes were sniffed as (``app.lib.sniff``):
``run.bat`` that sniffs as text is offered as ``run.bat.txt``, so an allowed type can never
land on a PC under a program's extension. ``content_disposition`` builds the download
header (RFC 6266 with RFC 8187's UTF-8 ``filename*``, and a plain ASCII ``filename`` for old
clients), with nothing in it that could end the header or the quoted string.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 120
# Extensions that already say the sniffed type (lower case), by the type's own extension.
_SAME_TYPE = {
    "jpg": {"jpg", "jpeg", "jpe"},
    "png": {"png"},
    "webp": {"webp"},
    "heic": {"heic", "heif"},
    "pdf": {"pdf"},
    "txt": {"txt", "text", "log", "csv", "md"},
    "docx": {"docx"},
    "xlsx": {"xlsx"},
    "pptx": {"pptx"},
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"*:<>?|\\/]')
_SPACES = re.compile(r"\s+")


def display_name(raw: str, extension: str) -> str:
    """The name to show and download under, ending with an extension of the sniffed type."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    # Format characters (bidi controls, zero-width joiners, BOM) go: in a file name they
    # only disguise; other controls and the characters Windows refuses become spaces.
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
    name = _SPACES.sub(" ", _UNSAFE.sub(" ", name)).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if dot and stem.strip(" .") and ext.lower() in _SAME_TYPE.get(extension, {extension}):
        body, suffix = stem, f".{ext}"  # the sender's own spelling of the right extension
    else:
        body, suffix = name, f".{extension}"
    body = body[: MAX_NAME_CHARS - len(suffix)].rstrip(" .")
    return (body or "file") + suffix


def content_disposition(name: str, *, inline: bool = False) -> str:
    """``attachment; filename="..."; filename*=UTF-8''...`` for ``name`` (a ``display_name``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = _SPACES.sub(" ", _UNSAFE.sub("_", ascii_name)).strip()
    if not ascii_name.rpartition(".")[0].strip(" ._"):  # nothing left of the stem: a name of another script
        ascii_name = "file" + (f".{ascii_name.rpartition('.')[2]}" if "." in ascii_name else "")
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
