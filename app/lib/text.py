"""Message text: validation of what is typed and safe rendering of what is stored."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from bleach.linkifier import TLDS, Linker
from markupsafe import Markup, escape

# C0/C1 control characters other than tab and newline, plus lone surrogates.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

# What draws nothing on its own: format characters (zero-width spaces and joiners, BOM,
# word joiner, bidirectional controls, tags), combining marks and variation selectors with
# nothing to sit on, spaces and separators, controls.
_BLANK_CATEGORIES = frozenset({"Cf", "Mn", "Zs", "Zl", "Zp", "Cc"})
# Letters and symbols that are blank by design: Hangul fillers and the braille blank.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def looks_blank(text: str) -> bool:
    """Whether ``text`` would show as nothing at all (it may still hold characters)."""
    return all(ch in _BLANK_LOOKING or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


class TextError(ValueError):
    """The text cannot be stored; the message says why, in words for the user."""


def clean_body(raw: str, max_chars: int) -> str:
    """Return the message text to store, or raise ``TextError``.

    Browsers send textarea newlines as CRLF; they become LF. Leading and trailing white
    space goes; everything else is kept exactly as typed (no HTML cleaning here), bidi
    controls included: they are shown isolated, and visibly inside links (``render_body``).
    Text made only of characters that draw nothing is refused like empty text.
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if looks_blank(text):  # empty, or only invisible characters: a blank-looking message
        raise TextError("Type a message first.")
    if len(text) > max_chars:
        raise TextError(f"A message can be at most {max_chars} characters ({len(text)} typed).")
    if _FORBIDDEN.search(text):
        raise TextError("The message contains control characters that cannot be sent.")
    return text


SEARCH_MAX_WORDS = 5


def search_words(raw: str) -> list[str]:
    """The words of a search box: control characters and lone surrogates are only gaps
    (PostgreSQL refuses a NUL in a string, SQLite would store it), at most
    ``SEARCH_MAX_WORDS`` words, in NFC like the names they are looked for in."""
    return unicodedata.normalize("NFC", _FORBIDDEN.sub(" ", raw)).split()[:SEARCH_MAX_WORDS]


def clean_line(raw: str, max_chars: int, what: str) -> str:
    """Return a one-line field (a name, a title) trimmed and checked, or raise ``TextError``."""
    text = unicodedata.normalize("NFC", raw).strip()
    if looks_blank(text):
        raise TextError(f"{what} cannot be empty.")
    if len(text) > max_chars:
        raise TextError(f"{what} can be at most {max_chars} characters.")
    if _FORBIDDEN.search(text) or _LINE_BREAKS.search(text):
        raise TextError(f"{what} must be one line of plain text.")
    return text


_LINE_BREAKS = re.compile("[\n\t\v\f\u2028\u2029]")


def visible_controls(text: str) -> str:
    """Return ``text`` with every format character (Cf) written out as "[U+202E]".

    For a link's text: a right-to-left override would make "http://evil.example/\u202egnp.exe"
    read as ending in ".png"; shown this way it reads as what it is. static/js/dom.js does
    the same for links the script draws.
    """
    return "".join(f"[U+{ord(ch):04X}]" if unicodedata.category(ch) == "Cf" else ch for ch in text)


def _link_attrs(attrs: dict[tuple[str | None, str] | str, str], new: bool = False) -> dict[tuple[str | None, str] | str, str]:
    attrs[(None, "rel")] = "noopener noreferrer nofollow"
    attrs[(None, "target")] = "_blank"
    attrs[(None, "dir")] = "ltr"  # a URL reads left to right, whatever the message around it
    if "_text" in attrs:
        attrs["_text"] = visible_controls(attrs["_text"])
    return attrs


_CALLBACKS: list[Callable[..., dict[tuple[str | None, str] | str, str]]] = [_link_attrs]

# The one linking rule, shared with the script (static/js/dom.js: linkify) and checked on both
# sides by one file of examples (tests/vectors/linkify.json):
# - any http(s) URL with an explicit scheme, whatever its host: a hospital's own systems
#   (http://10.1.2.3/lab, https://wiki.hospital.local/, https://pacs/) matter as much;
# - a bare name (www.nhs.uk, nhs.uk/conditions) under a top-level domain bleach knows, or an
#   intranet one (.local, .internal, .lan, .intranet); never an e-mail address, nor the
#   host of another scheme (ftp://host/...);
# - a URL ends at white space and at what a URL cannot hold as typed ({}|\^`<>"), then
#   loses bleach's trailing ".", "," and an unbalanced ")".
# bleach matches the text after escaping: "&lt;", "&gt;" and "&#34;" (< > ") end a path, while
# "&amp;" and "&#39;" (& ') belong to it, as they do in the raw text the script matches.
LINK_TLDS = sorted({*TLDS, "local", "internal", "lan", "intranet"})
_PATH = r"""(?:[^\s{}|\\^`<>"&]|&amp;|&\#39;)*"""
_URL_RE = re.compile(
    r"\(*(?:"
    r"\bhttps?://[\w.-]+(?::[0-9]+)?(?:[/?\#]" + _PATH + ")?"
    r"|\b(?<![@./])(?:https?:/{0,3}(?:(?:\w+:)?\w+@)?)?([\w-]+\.)+(?:" + "|".join(LINK_TLDS) + r")(?::[0-9]+)?(?!\.\w)\b"
    r"(?:[/?]" + _PATH + ")?"
    r")",
    re.IGNORECASE | re.UNICODE,
)
_LINKER = Linker(callbacks=_CALLBACKS, parse_email=False, url_re=_URL_RE)


def render_body(text: str) -> Markup:
    """Return stored text as safe HTML: escaped, URLs linked, line breaks kept.

    The page puts it in an element with ``dir="auto"`` (isolated: nothing in it reorders
    the page around it); links are ``dir="ltr"`` and show their format characters.
    """
    escaped = str(escape(text))
    linked = _LINKER.linkify(escaped)
    # Safe: everything but bleach's own <a> tags was escaped above.
    return Markup(linked.replace("\n", "<br>\n"))  # noqa: S704


def preview(text: str, max_chars: int = 80) -> str:
    """Return a one-line preview of a message for lists (plain text, escaped by Jinja)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 1] + "\u2026"
