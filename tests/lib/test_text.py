"""Message text: what is accepted, and how stored text becomes safe HTML."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from app.lib.text import TextError, clean_body, clean_line, preview, render_body

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
    html = str(render_body("see https://www.nhs.uk/conditions/sepsis/?a=1&b=<2> now"))
    # The href is the URL as typed, escaped once (an attribute value decodes back to it).
    link = '<a href="https://www.nhs.uk/conditions/sepsis/?a=1&amp;b=&lt;2&gt;" rel="noopener noreferrer nofollow" target="_blank">'
    assert html == "see " + link + "https://www.nhs.uk/conditions/sepsis/?a=1&amp;b=&lt;2&gt;</a> now"


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
