"""Small helpers shared by the test modules (the fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from app.actions import Actor
from app.records import Staff
from app.services import Services
from app.store.models import Base, Message
from app.store.staff import user_row_by_username

# Routes anyone may open without logging in. The service worker, manifest and offline page
# are fetched by the browser itself, with or without a session, and carry nothing personal.
PUBLIC_RULES = {
    "/", "/login", "/healthz", "/setup/<token>", "/invite/<token>",
    "/sw.js", "/manifest.webmanifest", "/offline",
}
PUBLIC_PREFIXES = ("/static/",)

# Every id argument from outside (query string, form field, URL path, ?after=) is walked with
# this one table: (label, the value percent-encoded as it travels). None is an id; each
# answers a clear 4xx (or the documented "ignored"), never a 500. "" is left out: an empty
# optional argument means "absent".
BAD_IDS: list[tuple[str, str]] = [
    ("superscript-two", "%C2%B2"),  # "²".isdigit() is True, int("²") raises
    ("superscript-one", "%C2%B9"),
    ("arabic-indic-three", "%D9%A3"),  # int("٣") == 3
    ("arabic-indic-one", "%D9%A1"),
    ("fullwidth-one", "%EF%BC%91"),
    ("minus-one", "-1"),
    ("plus-one", "%2B1"),
    ("exponent", "1e3"),
    ("leading-space", "%201"),
    ("trailing-newline", "1%0A"),
    ("hex", "0x1"),
    ("underscore", "1_0"),
    ("decimal", "1.5"),
    ("twenty-digits", "9" * 20),
    ("max-plus-one", str(2**63)),
    ("five-thousand-digits", "9" * 5000),  # int() refuses over 4300 digits
    ("lone-surrogate", "%ED%A0%80"),  # "\ud800" as UTF-8 would spell it
    ("nul", "%00"),
    ("word", "abc"),
]


def http_rules() -> list[tuple[str, str]]:
    """Every (rule, method) of the HTTP URL map, read from a throwaway app at collection time.

    HEAD and OPTIONS are left out (HEAD is GET without a body; OPTIONS is answered by Quart).
    """
    from app import create_app

    folder = tempfile.mkdtemp(prefix="medchat-rules-")
    old = os.environ.get("MEDCHAT_INSTANCE_PATH")
    os.environ["MEDCHAT_INSTANCE_PATH"] = folder
    try:
        app = create_app({"TESTING": True, "SECRET_KEY": "r" * 48, "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/rules.db"})
        rules = sorted(
            (rule.rule, method)
            for rule in app.url_map.iter_rules()
            if not rule.websocket
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        )
    finally:
        if old is None:
            os.environ.pop("MEDCHAT_INSTANCE_PATH", None)
        else:
            os.environ["MEDCHAT_INSTANCE_PATH"] = old
        shutil.rmtree(folder, ignore_errors=True)
    return rules


def is_public(rule: str) -> bool:
    return rule in PUBLIC_RULES or rule.startswith(PUBLIC_PREFIXES)


def fill(rule: str, values: dict[str, Any]) -> str:
    """Turn ``/chats/<int:conversation_id>`` into ``/chats/7`` from ``values``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"the test does not know how to fill <{name}> in {rule}: teach it"
        return str(values[name])

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", one, rule)


async def snapshot(svc: Services, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sorted), to show that a request changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with svc.db.reading() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = (await s.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def all_messages(svc: Services, conversation_id: int | None = None) -> list[Message]:
    async with svc.db.reading() as s:
        stmt = select(Message).order_by(Message.id)
        if conversation_id is not None:
            stmt = stmt.where(Message.conversation_id == conversation_id)
        return list((await s.execute(stmt)).scalars())


def actor_for(user: Staff, session_id: str | None = None) -> Actor:
    return Actor(user=user, session_id=session_id, ip="192.0.2.1")


def new_id() -> str:
    return str(uuid.uuid4())


def path_of(location: str) -> str:
    """A redirect's Location without the scheme, host and fragment."""
    location = re.sub(r"^https?://[^/]+", "", location)
    return location.split("#", 1)[0]


def conversation_id_of(location: str) -> int:
    match = re.search(r"/chats/(\d+)", location)
    assert match, location
    return int(match.group(1))


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def error_text(html: str) -> str:
    match = re.search(r'class="error-text"[^>]*>(.*?)</p>', html, re.S)
    assert match, "no error text on the page"
    return match.group(1).strip()


def textarea(html: str) -> str:
    match = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, "no message textarea"
    return match.group(1)


def between(items: list[Any], first: Any, second: Any) -> bool:
    """``first`` appears before ``second`` in ``items``."""
    return items.index(first) < items.index(second)


def iter_chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


async def user_id(svc: Services, username: str) -> int:
    """The id of an existing account."""
    async with svc.db.reading() as s:
        row = await user_row_by_username(s, username)
    assert row is not None, username
    return row.id
