"""A busy database (lock timeout, lost connection) costs a retry, never a socket or a 500."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from app.store import messages as store_messages
from tests.helpers import all_messages
from tests.ws.conftest import People
from tests.ws.wsclient import ws_open

pytestmark = pytest.mark.usefixtures("database_kind")


def _locked(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """Make the next ``times`` message inserts fail the way SQLite does under a long lock."""
    original = store_messages.insert_messages
    left = {"n": times}

    async def insert_messages(*args: Any, **kwargs: Any) -> list[int]:
        if left["n"] > 0:
            left["n"] -= 1
            raise OperationalError("INSERT INTO messages", {}, Exception("database is locked"))
        return await original(*args, **kwargs)

    monkeypatch.setattr(store_messages, "insert_messages", insert_messages)


async def test_socket_gets_busy_and_stays_open_and_the_resend_is_stored_once(people: People, svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _locked(monkeypatch, 1)
    cid = str(uuid.uuid4())
    frame = {"type": "send", "client_msg_id": cid, "conversation_id": people.ab, "body": "K+ 3.1"}
    async with ws_open(people.alice) as alice:
        await alice.send(frame)
        error = await alice.expect("error")
        assert error["code"] == "busy" and error["ref"] == cid and error["retry_after"] >= 1
        assert [m for m in await all_messages(svc, people.ab) if m.kind == "text"] == []
        await alice.send(frame)  # what the client's outbox does after retry_after
        ack = await alice.expect("ack")
        assert ack["client_msg_id"] == cid and ack["duplicate"] is False
    assert [m.body for m in await all_messages(svc, people.ab) if m.kind == "text"] == ["K+ 3.1"]


async def test_form_gets_503_with_retry_after_and_nothing_stored(people: People, svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    page = await people.alice.get(f"/chats/{people.ab}")
    html = await page.get_data(as_text=True)
    cid = re.search(r'name="client_msg_id" value="([^"]+)"', html)
    assert cid
    _locked(monkeypatch, 1)
    r = await people.alice.submit(f"/chats/{people.ab}/messages", {"body": "BP 90/60", "client_msg_id": cid.group(1)}, page=f"/chats/{people.ab}")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "busy" in (await r.get_data(as_text=True)).lower()
    assert [m for m in await all_messages(svc, people.ab) if m.kind == "text"] == []
