"""app/lib/filenames.py: a shared file's name is a label, never a path and never its type."""

from __future__ import annotations

import pytest

from app.lib.filenames import MAX_NAME_CHARS, content_disposition, display_name


@pytest.mark.parametrize(
    ("raw", "extension", "shown"),
    [
        ("wound-bay4.jpg", "jpg", "wound-bay4.jpg"),
        ("IMG_0042.JPEG", "jpg", "IMG_0042.JPEG"),
        ("ECG strip.pdf", "pdf", "ECG strip.pdf"),
        ("run.bat", "txt", "run.bat.txt"),  # text that a PC would run under its own name
        ("rota.exe", "pdf", "rota.exe.pdf"),
        ("photo.png", "jpg", "photo.png.jpg"),  # a JPEG called .png is offered as what it is
        ("notes", "txt", "notes.txt"),
        (".bashrc", "txt", "bashrc.txt"),
        ("../../etc/passwd", "txt", "passwd.txt"),
        ("C:\\Users\\nurse\\Desktop\\handover.docx", "docx", "handover.docx"),
        ("invoice\u202efdp.exe", "pdf", "invoicefdp.exe.pdf"),  # the override that hid ".exe"
        ("zero\u200bwidth.pdf", "pdf", "zerowidth.pdf"),
        ('bad"name<>|?*.pdf', "pdf", "bad name.pdf"),
        ("line\r\nbreak.txt", "txt", "line break.txt"),
        ("", "pdf", "file.pdf"),
        ("....", "pdf", "file.pdf"),
        ("\u202e", "txt", "file.txt"),
        ("Cafe\u0301 menu.pdf", "pdf", "Café menu.pdf"),  # NFC
    ],
)
def test_display_names(raw: str, extension: str, shown: str) -> None:
    assert display_name(raw, extension) == shown


def test_a_long_name_is_cut_but_keeps_its_extension() -> None:
    shown = display_name("a" * 10_000 + ".pdf", "pdf")
    assert len(shown) == MAX_NAME_CHARS and shown.endswith("a.pdf")
    shown = display_name("b" * 10_000 + ".exe", "txt")
    assert len(shown) == MAX_NAME_CHARS and shown.endswith("b.txt")


def test_the_download_header_cannot_be_broken_out_of() -> None:
    header = content_disposition('Entlassbrief "Müller"; x=1.pdf')
    assert header == "attachment; filename=\"Entlassbrief _Muller_; x=1.pdf\"; filename*=UTF-8''Entlassbrief%20%22M%C3%BCller%22%3B%20x%3D1.pdf"
    for raw in ("a\r\nSet-Cookie: x=1.pdf", 'q"uote\\back.pdf', "\u0645\u0631\u064a\u0636.pdf"):
        header = content_disposition(display_name(raw, "pdf"))
        assert "\r" not in header and "\n" not in header
        assert header.count('"') == 2
        assert header.isascii()
    assert content_disposition("\u0645\u0631\u064a\u0636.pdf").startswith('attachment; filename="file.pdf"; filename*=UTF-8\'\'%D9%85')
    assert content_disposition("scan.jpg", inline=True).startswith("inline; ")
