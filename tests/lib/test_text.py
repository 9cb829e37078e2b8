"""Message text: what is accepted, and how stored text becomes safe HTML."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from app.lib.text import (
    LINK_TLDS,
    TextError,
    clean_body,
    clean_line,
    looks_blank,
    preview,
    render_body,
    visible_controls,
)

ROOT = Path(__file__).resolve().parents[2]
LINKIFY_VECTORS = json.loads((ROOT / "tests" / "vectors" / "linkify.json").read_text())["cases"]

CLINICAL = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"


def test_clean_body_keeps_text_exactly() -> None:
    assert clean_body(CLINICAL, 4000) == CLINICAL
    assert clean_body("  <5 mg\r\nthen\r2 mg\t(oral)  ", 4000) == "<5 mg\nthen\n2 mg\t(oral)"
    assert clean_body("\u00e9\u0301", 4000) == "\u00e9\u0301"  # no normalisation of what was typed


@pytest.mark.parametrize(
    ("raw", "why"),
    [("", "Type a message"), (" \n\t\r\n ", "Type a message"), ("x" * 4001, "at most 4000"), ("a\x00b", "control"), ("a\x7fb", "control"), ("a\x85b", "control"), ("a\ud800", "control")],
)
def test_clean_body_refuses(raw: str, why: str) -> None:
    with pytest.raises(TextError, match=why):
        clean_body(raw, 4000)


def test_length_is_counted_after_trimming() -> None:
    assert clean_body("  " + "x" * 4000 + "\n\n", 4000) == "x" * 4000


def test_clean_line() -> None:
    assert clean_line("  Ward 7  ", 100, "The group name") == "Ward 7"
    assert clean_line("Cafe\u0301", 100, "Name") == "Caf\u00e9"  # names are NFC
    for bad in ("", "   ", "a\nb", "a\tb", "x" * 101, "a\x00"):
        with pytest.raises(TextError):
            clean_line(bad, 100, "Name")


def test_render_escapes() -> None:
    html = render_body(CLINICAL)
    assert isinstance(html, Markup)
    assert str(html) == "K+ &lt; 3.5 &amp; BP &gt; 140 &lt;script&gt;alert(1)&lt;/script&gt;"


def test_render_keeps_line_breaks() -> None:
    assert str(render_body("one\ntwo\n\nthree")) == "one<br>\ntwo<br>\n<br>\nthree"


def test_render_links_urls_safely() -> None:
    html = str(render_body("see https://www.nhs.uk/conditions/sepsis/?a=1&b=2 <now>"))
    # The href is the URL as typed, escaped once (an attribute value decodes back to it);
    # "<" ends a URL, as the raw-text rule says (tests/vectors/linkify.json).
    link = '<a href="https://www.nhs.uk/conditions/sepsis/?a=1&amp;b=2" rel="noopener noreferrer nofollow" target="_blank" dir="ltr">'
    assert html == "see " + link + "https://www.nhs.uk/conditions/sepsis/?a=1&amp;b=2</a> &lt;now&gt;"


@pytest.mark.parametrize(
    "text",
    [
        'javascript:alert(1)',
        '<a href="javascript:alert(1)">x</a>',
        '"><img src=x onerror=alert(1)>',
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "https://x.org/\"onmouseover=\"alert(1)",
    ],
)
def test_render_never_makes_markup_from_text(text: str) -> None:
    html = str(render_body(text))
    assert "<img" not in html and "<script" not in html
    for tag in html.split("<")[1:]:
        assert tag.startswith(("a href=\"http", "/a>", "br>")), html
    assert 'onmouseover="' not in html


def test_preview() -> None:
    assert preview("  line one\n\nline   two ") == "line one line two"
    long = "word " * 40
    cut = preview(long, 20)
    assert len(cut) == 20 and cut.endswith("\u2026")
    assert preview(CLINICAL) == CLINICAL  # plain text: Jinja escapes it


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/lab?x=1", "https://wiki.hospital.local/page", "https://pacs/study/7", "https://www.nhs.uk/conditions"],
)
def test_intranet_and_public_urls_are_linked(url: str) -> None:
    html = str(render_body(f"see {url} now"))
    assert f'href="{url.replace("&", "&amp;")}"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_only_http_links() -> None:
    html = str(render_body("javascript:alert(1) ftp://files.example.org/x"))
    assert "<a" not in html.split("ftp://")[0]
    assert 'href="javascript' not in html


# --- text that draws nothing ----------------------------------------------------------------

INVISIBLE = [
    "\u200b",  # zero width space
    "\ufeff",  # byte order mark
    "\u2800",  # braille pattern blank
    "\u3164",  # Hangul filler
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\uffa0",  # halfwidth Hangul filler
    "\u2060",  # word joiner
    "\u180e",  # Mongolian vowel separator
    "\u0301\u0308",  # combining marks with nothing to sit on
    "\ufe0f\ufe0e",  # variation selectors
    "\U000e0100",  # a supplementary variation selector
    "\u034f",  # combining grapheme joiner
    "\u202e\u2066\u2069",  # bidi controls alone
    "\u200d\u200c\u200e",  # joiners and a mark
    "\U000e0041\U000e007f",  # tag characters
    "\u3000\u00a0\u2007",  # ideographic, no-break and figure spaces
    "\u200b \u2800\n\u3164\t\ufeff",  # a mixture, with ordinary white space
]


@pytest.mark.parametrize("raw", INVISIBLE, ids=lambda raw: " ".join(f"U+{ord(c):04X}" for c in raw))
def test_invisible_only_text_is_refused_like_empty_text(raw: str) -> None:
    assert looks_blank(raw)
    with pytest.raises(TextError, match="Type a message first"):
        clean_body(raw, 4000)
    with pytest.raises(TextError, match="cannot be empty"):
        clean_line(raw.replace("\n", "").replace("\t", ""), 100, "The group name")


@pytest.mark.parametrize(
    "text",
    [
        "ok\u200b",  # a visible letter with an invisible one: kept as typed
        "\U0001f44d\ufe0f",  # thumbs up with its variation selector
        "e\u0301",
        "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
        "\u0645\u0631\u062d\u0628\u0627",  # Arabic
        "\u3131",  # a Hangul letter that is not a filler
        "\u2801",  # a braille pattern with a dot
        ".",
    ],
)
def test_visible_text_with_invisible_characters_is_kept(text: str) -> None:
    assert not looks_blank(text)
    assert clean_body(text, 4000) == text
    assert clean_line(text, 100, "Name") == text.replace("e\u0301", "\u00e9")  # names are NFC


def test_clean_line_refuses_unicode_line_breaks() -> None:
    for bad in ("Ward\u20287", "Ward\u20297", "Ward\x0b7", "Ward\x0c7"):
        with pytest.raises(TextError, match="one line"):
            clean_line(bad, 100, "The group name")


# --- bidirectional controls -------------------------------------------------------------------

SPOOF = "http://evil.example/\u202egnp.exe"


def test_bidi_controls_in_link_text_are_shown() -> None:
    html = str(render_body(f"open {SPOOF} now"))
    text = html.split(">", 1)[1].split("</a>")[0]
    assert text == "http://evil.example/[U+202E]gnp.exe"  # reads as what it is, not "...exe.png"
    assert "\u202e" not in text
    assert 'dir="ltr"' in html.split(">", 1)[0]
    assert html.endswith("</a> now")


@pytest.mark.parametrize("control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c", "\u200b"])
def test_every_format_character_in_link_text_is_visible(control: str) -> None:
    html = str(render_body(f"https://pacs/study/{control}7"))
    link_text = html.split(">", 1)[1].split("</a>")[0]
    assert control not in link_text and f"[U+{ord(control):04X}]" in link_text


def test_text_outside_links_is_kept_as_typed() -> None:
    text = "\u202eabc\u202c and \u2067\u05e9\u05dc\u05d5\u05dd\u2069"
    assert clean_body(text, 4000) == text  # stored as typed
    assert str(render_body(text)) == text  # shown isolated by the page (dir="auto"), not rewritten


def test_hebrew_and_arabic_render_intact() -> None:
    hebrew = "\u05e9\u05dc\u05d5\u05dd, \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?"
    arabic = "\u0645\u0631\u062d\u0628\u0627 https://wiki.hospital.local/\u0635\u0641\u062d\u0629"
    assert str(render_body(hebrew)) == hebrew
    html = str(render_body(arabic))
    assert html.startswith("\u0645\u0631\u062d\u0628\u0627 <a ")
    assert ">https://wiki.hospital.local/\u0635\u0641\u062d\u0629</a>" in html  # letters are not controls


def test_visible_controls() -> None:
    assert visible_controls("a\u202eb\U000e0041c") == "a[U+202E]b[U+E0041]c"
    assert visible_controls("plain \u05e9") == "plain \u05e9"


# --- one linking rule for the page and the script (tests/vectors/linkify.json) ----------------


class _Shown(HTMLParser):
    """What rendered HTML shows, as tests/vectors/linkify.json writes it: text and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shown: list[Any] = []
        self.link: dict[str, str] | None = None
        self.after_br = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            # The page and the script draw the same link (static/js/dom.js: bodyNodes).
            assert found == {"href": found["href"], "rel": "noopener noreferrer nofollow", "target": "_blank", "dir": "ltr"}
            self.link = {"a": "", "href": found["href"] or ""}
        elif tag == "br":
            self.text("\n")
            self.after_br = True
        else:
            raise AssertionError(f"unexpected <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.link is not None:
            self.shown.append(self.link)
            self.link = None

    def handle_data(self, data: str) -> None:
        if self.after_br and data.startswith("\n"):  # render_body writes "<br>\n"
            data = data[1:]
        self.after_br = False
        if self.link is not None:
            self.link["a"] += data
        elif data:
            self.text(data)

    def text(self, data: str) -> None:
        if self.shown and isinstance(self.shown[-1], str):
            self.shown[-1] += data
        else:
            self.shown.append(data)


@pytest.mark.parametrize("case", LINKIFY_VECTORS, ids=[case["why"] for case in LINKIFY_VECTORS])
def test_render_body_follows_the_shared_link_examples(case: dict[str, Any]) -> None:
    parser = _Shown()
    parser.feed(str(render_body(case["text"])))
    parser.close()
    assert parser.shown == case["shown"]


def test_the_script_knows_the_same_top_level_domains() -> None:
    source = (ROOT / "static" / "js" / "dom.js").read_text()
    block = re.search(r"export const LINK_TLDS = \(\n(.*?)\n\)", source, re.DOTALL)
    assert block, "static/js/dom.js has no LINK_TLDS"
    assert " ".join(re.findall(r"'([^']*)'", block.group(1))).split() == LINK_TLDS
