"""Asked once before what cannot be undone with a click: remove a member, leave a group,
deactivate, reset a password, sign out the other sessions. The link opens a page that names
what will happen (GET changes nothing); its button does it (POST to the same URL)."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest

from app.services import Services
from tests.helpers import conversation_id_of, user_id
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")


def plain(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def confirm_page(client: Client, path: str, *, asks: str, says: str) -> None:
    """GET ``path``: a page asking ``asks`` that says ``says`` and posts to ``path`` itself."""
    r = await client.get(path)
    assert r.status_code == 200, path
    html = await r.get_data(as_text=True)
    text = plain(html)
    assert asks in text and says in text, text
    assert f'<form method="post" action="{path}"' in html
    assert 'name="csrf_token"' in html and ">Cancel</a>" in html


@pytest.fixture
async def group(login_as: Any) -> tuple[Client, Client, int]:
    alice = await login_as("alice")
    bob = await login_as("bob")
    r = await alice.submit("/chats/group", {"title": "Ward 7", "members": ["bob"]}, page="/chats/new-group")
    assert r.status_code == 303
    return alice, bob, conversation_id_of(r.headers["Location"])


async def test_remove_and_leave_ask_first(group: tuple[Client, Client, int], svc: Services) -> None:
    alice, bob, conv = group
    bob_id = await user_id(svc, "bob")
    info = await (await alice.get(f"/chats/{conv}/info")).get_data(as_text=True)
    assert f'href="/chats/{conv}/members/{bob_id}/remove"' in info
    assert 'data-confirm="Remove Bob from “Ward 7”? Bob stops receiving' in info
    remove = f"/chats/{conv}/members/{bob_id}/remove"
    await confirm_page(alice, remove, asks="Remove Bob from “Ward 7”?", says="stops receiving this group's messages at once")
    assert (await bob.get(f"/chats/{conv}")).status_code == 200  # asking changed nothing
    await confirm_page(bob, f"/chats/{conv}/leave", asks="Leave “Ward 7”?", says="a group admin can add you again")
    assert (await alice.submit(remove, page=remove)).status_code == 303
    assert (await bob.get(f"/chats/{conv}")).status_code == 404
    # Outsiders and removed members find no such page.
    assert (await bob.get(remove)).status_code == 404
    assert (await bob.get(f"/chats/{conv}/leave")).status_code == 404


async def test_deactivate_and_reset_ask_first(login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    carol = await login_as("carol")
    carol_id = await user_id(svc, "carol")
    detail = await (await root.get(f"/admin/staff/{carol_id}")).get_data(as_text=True)
    assert f'href="/admin/staff/{carol_id}/deactivate" data-confirm="Deactivate Carol?' in detail
    await confirm_page(root, f"/admin/staff/{carol_id}/deactivate", asks="Deactivate Carol?", says="signed out everywhere at once")
    await confirm_page(root, f"/admin/staff/{carol_id}/reset", asks="Reset Carol's password?", says="valid 72 h")
    assert (await carol.get("/chats")).status_code == 200  # asking changed nothing
    assert (await carol.get(f"/admin/staff/{carol_id}/deactivate")).status_code == 403  # not an administrator
    page = f"/admin/staff/{carol_id}/deactivate"
    assert (await root.submit(page, page=page)).status_code == 303
    assert (await carol.get("/chats")).status_code == 303


async def test_signing_out_the_others_asks_first(login_as: Any) -> None:
    laptop = await login_as("dana")
    phone = await login_as("dana")
    html = await (await laptop.get("/account/sessions")).get_data(as_text=True)
    assert 'data-confirm="Sign out 1 other session?' in html
    await confirm_page(laptop, "/account/sessions/end-others", asks="Sign out 1 other session?", says="This one stays signed in")
    assert (await phone.get("/chats")).status_code == 200
    r = await laptop.submit("/account/sessions/end-others", page="/account/sessions/end-others")
    assert r.status_code == 303
    assert (await phone.get("/chats")).status_code == 303
    # With no other session, nothing to offer.
    assert "Sign out all my other sessions" not in await (await laptop.get("/account/sessions")).get_data(as_text=True)
