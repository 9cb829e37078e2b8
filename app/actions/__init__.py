"""The only code that writes, and the only code that publishes events (after commit)."""

from __future__ import annotations

from dataclasses import dataclass

from app.records import Staff


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user, their session (hash) and address, for authorisation and audit."""

    user: Staff
    session_id: str | None
    ip: str
