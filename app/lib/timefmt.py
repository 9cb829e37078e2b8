"""How times read on pages: "07:02", "Yesterday 18:10", "Monday 09:15", "3 Nov 09:15"."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.lib.clock import as_utc


def display_zone(name: str | None) -> ZoneInfo:
    """The zone pages show times in: ``name``, or this machine's zone when None.

    A terminal without JavaScript sees the server's clock; the script shows the browser's.
    """
    if name:
        return ZoneInfo(name)
    from tzlocal import get_localzone_name

    try:
        return ZoneInfo(get_localzone_name() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when_label(value: datetime, now: datetime, zone: tzinfo, *, with_time: bool = True) -> str:
    """A short label for a moment, relative to ``now`` in ``zone`` (both aware or UTC-naive).

    ``with_time`` False is the chat list's form: the time today, else only the day.
    """
    local, today = as_utc(value).astimezone(zone), as_utc(now).astimezone(zone)
    days = (today.date() - local.date()).days
    clock = local.strftime("%H:%M")
    if days <= 0:
        return clock
    if days == 1:
        day = "Yesterday"
    elif days < 7:
        day = local.strftime("%A")
    elif local.year == today.year:
        day = f"{local.day} {local.strftime('%b')}"
    else:
        day = f"{local.day} {local.strftime('%b %Y')}"
    return f"{day} {clock}" if with_time else day


def last_seen_label(value: datetime, now: datetime, zone: tzinfo) -> str:
    """Presence on a page: "last seen today at 07:02", "... yesterday at 18:10", "... 3 Nov at
    09:15" (the script's own words for it, static/js/dom.js lastSeenLabel)."""
    local, today = as_utc(value).astimezone(zone), as_utc(now).astimezone(zone)
    days = (today.date() - local.date()).days
    if days <= 0:
        day = "today"
    elif days == 1:
        day = "yesterday"
    else:
        day = when_label(value, now, zone, with_time=False)
    return f"last seen {day} at {local.strftime('%H:%M')}"


def day_label(value: datetime, now: datetime, zone: tzinfo) -> str:
    """The day separator in a conversation: "Today", "Yesterday", "Monday", "Monday 3 November 2026"."""
    local, today = as_utc(value).astimezone(zone), as_utc(now).astimezone(zone)
    days = (today.date() - local.date()).days
    if days == 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if 1 < days < 7:
        return local.strftime("%A")
    return f"{local.strftime('%A')} {local.day} {local.strftime('%B %Y')}"
