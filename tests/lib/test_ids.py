"""The one parser for ids that arrive as text."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from app.lib.ids import MAX_ID, IdError, parse_id, parse_position
from tests.helpers import BAD_IDS


@pytest.mark.parametrize("raw", [encoded for _, encoded in BAD_IDS] + [unquote(e, errors="surrogatepass") for _, e in BAD_IDS] + ["", "\ud800", "0"], ids=repr)
def test_parse_id_refuses(raw: str) -> None:
    with pytest.raises(IdError):
        parse_id(raw)


def test_parse_id_takes_plain_ascii_digits_up_to_64_bits() -> None:
    assert parse_id("1") == 1
    assert parse_id("0042") == 42
    assert parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id("0" * 30 + "7") == 7  # leading zeros are still the same number
    assert parse_id("0", minimum=0) == 0


def test_parse_position() -> None:
    assert parse_position("0") == 0
    assert parse_position("17") == 17
    assert parse_position("9" * 5000) == MAX_ID  # beyond every id: after the last one
    assert parse_position(str(MAX_ID + 1)) == MAX_ID
    for raw in ("", "\u00b2", "\u0663", "-1", " 1", "+1", "1e3", "0x1", "1.5", "\ud800"):
        assert parse_position(raw) is None
