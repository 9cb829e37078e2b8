"""Times as pages show them: relative day labels in a zone, and readable device names."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.lib.devices import describe_device
from app.lib.timefmt import day_label, display_zone, last_seen_label, when_label

NOW = datetime(2026, 12, 3, 10, 42, tzinfo=UTC)  # a Thursday
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("value", "when", "listed", "day"),
    [
        (datetime(2026, 12, 3, 7, 2, tzinfo=UTC), "07:02", "07:02", "Today"),
        (datetime(2026, 12, 2, 18, 10, tzinfo=UTC), "Yesterday 18:10", "Yesterday", "Yesterday"),
        (datetime(2026, 11, 30, 9, 15, tzinfo=UTC), "Monday 09:15", "Monday", "Monday"),
        (datetime(2026, 11, 26, 9, 15, tzinfo=UTC), "26 Nov 09:15", "26 Nov", "Thursday 26 November 2026"),
        (datetime(2025, 11, 3, 9, 15, tzinfo=UTC), "3 Nov 2025 09:15", "3 Nov 2025", "Monday 3 November 2025"),
        (datetime(2026, 12, 3, 10, 42), "10:42", "10:42", "Today"),  # SQLite's naive UTC
    ],
)
def test_labels_relative_to_now(value: datetime, when: str, listed: str, day: str) -> None:
    assert when_label(value, NOW, UTC) == when
    assert when_label(value, NOW, UTC, with_time=False) == listed
    assert day_label(value, NOW, UTC) == day


def test_the_zone_decides_the_day() -> None:
    late = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert when_label(late, NOW, UTC) == "Yesterday 23:30"
    # In Kolkata (UTC+05:30) it was already 05:00 on the 3rd: today.
    assert when_label(late, NOW, ZoneInfo("Asia/Kolkata")) == "05:00"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert when_label(summer, datetime(2026, 7, 1, 13, 0, tzinfo=UTC), LONDON) == "13:00"  # BST


def test_display_zone_defaults_to_the_machines() -> None:
    assert display_zone("Europe/London").key == "Europe/London"
    assert isinstance(display_zone(None), ZoneInfo)


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "Safari on macOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
        ("", "Unknown device"),
        ("<script>alert(1)</script>", "Unknown device"),
    ],
)
def test_device_names(agent: str, name: str) -> None:
    assert describe_device(agent) == name


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (datetime(2026, 12, 3, 7, 2, tzinfo=UTC), "last seen today at 07:02"),
        (datetime(2026, 12, 2, 18, 10, tzinfo=UTC), "last seen yesterday at 18:10"),
        (datetime(2026, 11, 30, 9, 15, tzinfo=UTC), "last seen Monday at 09:15"),
        (datetime(2025, 11, 3, 9, 15, tzinfo=UTC), "last seen 3 Nov 2025 at 09:15"),
        (datetime(2026, 12, 2, 23, 30, tzinfo=UTC), "last seen yesterday at 23:30"),
    ],
)
def test_last_seen_label(value: datetime, label: str) -> None:
    assert last_seen_label(value, NOW, UTC) == label
    # Days are the zone's: 23:30 UTC on the 2nd is already the 3rd in Tokyo.
    assert last_seen_label(datetime(2026, 12, 2, 23, 30, tzinfo=UTC), NOW, ZoneInfo("Asia/Tokyo")) == "last seen today at 08:30"
