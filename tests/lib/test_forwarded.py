from __future__ import annotations

import pytest

from app.lib.forwarded import peer_address


@pytest.mark.parametrize(
    ("header", "hops", "expected"),
    [
        (None, 0, "10.0.0.9"),
        ("6.6.6.6", 0, "10.0.0.9"),  # no proxy configured: the header is the client's own words
        ("6.6.6.6, 203.0.113.5", 1, "203.0.113.5"),  # the proxy appended the real peer
        ("6.6.6.6, 203.0.113.5, 10.1.1.1", 2, "203.0.113.5"),
        ("203.0.113.5", 2, "10.0.0.9"),  # fewer entries than proxies: not believed
        (" , ", 1, "10.0.0.9"),
    ],
)
def test_only_trusted_proxies_are_believed(header: str | None, hops: int, expected: str) -> None:
    assert peer_address(header, "10.0.0.9", hops) == expected


def test_no_peer_at_all_is_an_empty_address() -> None:
    assert peer_address(None, None, 0) == ""
