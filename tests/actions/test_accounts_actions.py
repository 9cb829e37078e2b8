"""Account and login actions: passwords, setup and invite links, sessions, lockout, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher

from app.actions import accounts, auth
from app.actions.accounts import StaffFields
from app.actions.errors import ActionError, Forbidden, LoginFailed, NotFound
from app.lib.clock import FrozenClock
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from app.store import audit
from app.store.staff import user_row_by_username
from tests.helpers import actor_for, snapshot

pytestmark = pytest.mark.usefixtures("database_kind")

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "lantern orchard velvet quarry"


async def stored_hash(svc: Services, username: str) -> str | None:
    async with svc.db.reading() as s:
        row = await user_row_by_username(s, username)
        assert row is not None
        return row.password_hash


async def audit_log(svc: Services) -> list[tuple[str, str, str]]:
    async with svc.db.reading() as s:
        return [(e.action, e.actor_name, e.detail) for e in await audit.entries(s, limit=1000)]


# --- passwords ----------------------------------------------------------------------------


@pytest.fixture
def production_hashing(app_config: dict[str, Any]) -> None:
    app_config.pop("PASSWORD_HASHING", None)


@pytest.mark.usefixtures("production_hashing")
async def test_password_is_hashed_with_argon2id(svc: Services, make_user: Any) -> None:
    await make_user("alice")
    hashed = await stored_hash(svc, "alice")
    assert hashed is not None
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in hashed
    assert PasswordHasher().verify(hashed, PASSWORD)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pass", "at least 12"),
        ("x" * 257, "at most 256"),
        ("password1234", "common"),
        ("qwertyuiopasdf", "common"),
        ("my name is alice.w and I", "username or name"),
        ("Wonderland-Whitfield-9", "username or name"),
    ],
)
async def test_weak_passwords_are_refused(svc: Services, password: str, why: str) -> None:
    fields = StaffFields("alice.w", "Alice Whitfield", "ICU", "Nurse")
    before = await snapshot(svc)
    with pytest.raises(ActionError) as caught:
        await accounts.create_user_with_password(svc, fields, password)
    assert caught.value.code == "weak_password"
    assert why in caught.value.message
    assert await snapshot(svc) == before


@pytest.mark.parametrize(
    "password",
    [
        "N\u00e4chtliche Stille \u00fcber dem Krankenhaus, \U0001f319 und Kaffee",
        "\u043a\u043e\u0448\u043a\u0430 \u0441\u043f\u0438\u0442 \u043d\u0430 \u0442\u0451\u043f\u043b\u043e\u0439 \u043f\u0435\u0447\u0438",
        "correct horse battery staple " * 8 + "ok",  # 234 characters
    ],
    ids=["german-emoji", "cyrillic", "long"],
)
async def test_long_unicode_passphrases_are_accepted(svc: Services, password: str) -> None:
    user = await accounts.create_user_with_password(svc, StaffFields("alice", "Alice Whitfield"), password)
    assert user.has_password
    login = await auth.do_login(svc, "alice", password, "192.0.2.1", "pytest")
    assert login.user.id == user.id


async def test_usernames_are_lower_case_and_unique(svc: Services) -> None:
    user = await accounts.create_user_with_password(svc, StaffFields("  Alice.W ", "Alice"), PASSWORD)
    assert user.username == "alice.w"
    with pytest.raises(ActionError) as caught:
        await accounts.create_user_with_password(svc, StaffFields("ALICE.W", "Other Alice"), PASSWORD)
    assert caught.value.code == "username_taken"


# --- setup link ---------------------------------------------------------------------------


async def test_setup_link_once(svc: Services, clock: FrozenClock) -> None:
    token = await accounts.do_issue_setup_link(svc)
    assert token and len(token) >= 40
    assert await accounts.setup_link_valid(svc, token)
    admin = await accounts.do_setup_admin(svc, token, StaffFields("root", "Rosa Admin", role="member"), NEW_PASSWORD, "192.0.2.1")
    assert admin.role == "admin"  # whatever the form said
    assert not await accounts.setup_link_valid(svc, token)
    with pytest.raises(NotFound):
        await accounts.do_setup_admin(svc, token, StaffFields("root2", "Second Root"), NEW_PASSWORD, "192.0.2.1")
    assert await accounts.do_issue_setup_link(svc) is None
    assert ("setup_link_issued", "", "") in await audit_log(svc)
    # The token itself is never stored, only its hash.
    assert token not in repr(await snapshot(svc))


async def test_setup_link_expires(svc: Services, clock: FrozenClock) -> None:
    token = await accounts.do_issue_setup_link(svc)
    assert token
    clock.advance(24 * 3600)
    assert not await accounts.setup_link_valid(svc, token)
    with pytest.raises(NotFound):
        await accounts.do_setup_admin(svc, token, StaffFields("root", "Rosa Admin"), NEW_PASSWORD, "")


# --- staff management ---------------------------------------------------------------------


@pytest.fixture
async def root(make_user: Any) -> Staff:
    user: Staff = await make_user("root", "Rosa Admin", admin=True)
    return user


async def test_only_admins_manage_accounts(svc: Services, make_user: Any, root: Staff) -> None:
    bob = actor_for(await make_user("bob"))
    with pytest.raises(Forbidden):
        await accounts.do_create_staff(svc, bob, StaffFields("eve", "Eve"))
    with pytest.raises(Forbidden):
        await accounts.do_set_active(svc, bob, root.id, False)
    with pytest.raises(Forbidden):
        await accounts.do_reset_password(svc, bob, root.id)
    with pytest.raises(Forbidden):
        await accounts.do_change_role(svc, bob, bob.user.id, "admin")
    with pytest.raises(Forbidden):
        await accounts.audit_entries(svc, bob)


async def test_invite_flow(svc: Services, root: Staff, clock: FrozenClock) -> None:
    user, token = await accounts.do_create_staff(svc, actor_for(root), StaffFields("carol", "Carol Jones", "ICU", "Doctor"))
    assert not user.has_password
    with pytest.raises(LoginFailed):
        await auth.do_login(svc, "carol", "", "", "")
    assert (await accounts.invite_for(svc, token)) == user
    clock.advance(72 * 3600 - 1)
    with pytest.raises(ActionError) as caught:
        await accounts.do_accept_invite(svc, token, "carol's password!!", "")
    assert caught.value.code == "weak_password"
    await accounts.do_accept_invite(svc, token, NEW_PASSWORD, "")
    assert await accounts.invite_for(svc, token) is None
    with pytest.raises(NotFound):
        await accounts.do_accept_invite(svc, token, NEW_PASSWORD + "!", "")
    assert (await auth.do_login(svc, "carol", NEW_PASSWORD, "", "")).user.id == user.id


async def test_invite_expires_after_72_hours(svc: Services, root: Staff, clock: FrozenClock) -> None:
    _, token = await accounts.do_create_staff(svc, actor_for(root), StaffFields("carol", "Carol Jones"))
    clock.advance(72 * 3600)
    assert await accounts.invite_for(svc, token) is None
    with pytest.raises(NotFound):
        await accounts.do_accept_invite(svc, token, NEW_PASSWORD, "")


async def test_deactivation_ends_sessions_and_publishes(svc: Services, make_user: Any, root: Staff, events: list[Event]) -> None:
    await make_user("bob")
    one = await auth.do_login(svc, "bob", PASSWORD, "", "phone")
    two = await auth.do_login(svc, "bob", PASSWORD, "", "laptop")
    events.clear()
    await accounts.do_set_active(svc, actor_for(root), one.user.id, False)
    assert [e.kind for e in events] == ["session_ended"]
    from app.lib.tokens import token_hash

    assert sorted(events[0].session_ids) == sorted([token_hash(one.token), token_hash(two.token)])
    assert await auth.resolve_session(svc, one.token, activity=True) is None
    assert await auth.resolve_session(svc, two.token, activity=True) is None
    with pytest.raises(LoginFailed):
        await auth.do_login(svc, "bob", PASSWORD, "", "")
    assert "bob" not in [p.username for p in await accounts.find_staff(svc, "")]
    await accounts.do_set_active(svc, actor_for(root), one.user.id, True)
    assert (await auth.do_login(svc, "bob", PASSWORD, "", "")).user.active


async def test_reset_password(svc: Services, make_user: Any, root: Staff, events: list[Event]) -> None:
    await make_user("bob")
    session = await auth.do_login(svc, "bob", PASSWORD, "", "")
    events.clear()
    user, token = await accounts.do_reset_password(svc, actor_for(root), session.user.id)
    assert not user.has_password
    assert await stored_hash(svc, "bob") is None
    assert [e.kind for e in events] == ["session_ended"]
    assert await auth.resolve_session(svc, session.token, activity=True) is None
    with pytest.raises(LoginFailed):
        await auth.do_login(svc, "bob", PASSWORD, "", "")
    await accounts.do_accept_invite(svc, token, NEW_PASSWORD, "")
    assert (await auth.do_login(svc, "bob", NEW_PASSWORD, "", "")).user.id == user.id


async def test_last_admin_is_kept(svc: Services, root: Staff, make_user: Any) -> None:
    with pytest.raises(ActionError) as caught:
        await accounts.do_set_active(svc, actor_for(root), root.id, False)
    assert caught.value.code == "last_admin"
    with pytest.raises(ActionError) as caught:
        await accounts.do_change_role(svc, actor_for(root), root.id, "member")
    assert caught.value.code == "last_admin"
    second: Staff = await make_user("root2", admin=True)
    await accounts.do_change_role(svc, actor_for(second), root.id, "member")
    assert (await accounts.get_staff(svc, root.id)).role == "member"  # type: ignore[union-attr]


# --- login, lockout, sessions -------------------------------------------------------------


async def test_login_failures_say_the_same(svc: Services, make_user: Any, root: Staff) -> None:
    await make_user("bob")
    messages = set()
    for username, password in (("bob", "wrong password!"), ("nobody", PASSWORD), ("", ""), ("bob", "")):
        with pytest.raises(LoginFailed) as caught:
            await auth.do_login(svc, username, password, "", "")
        messages.add((caught.value.status, caught.value.message))
    assert len(messages) == 1


async def test_lockout_backs_off(svc: Services, make_user: Any, clock: FrozenClock) -> None:
    await make_user("bob")
    for _ in range(5):
        with pytest.raises(LoginFailed):
            await auth.do_login(svc, "bob", "wrong password!", "198.51.100.1", "")
    log = await audit_log(svc)
    assert any(a == "account_locked" and "60 s" in d for a, _, d in log)
    with pytest.raises(LoginFailed):
        await auth.do_login(svc, "bob", PASSWORD, "", "")
    clock.advance(61)
    with pytest.raises(LoginFailed):  # a sixth failure locks for twice as long
        await auth.do_login(svc, "bob", "wrong password!", "", "")
    assert any(a == "account_locked" and "120 s" in d for a, _, d in await audit_log(svc))
    clock.advance(119)
    with pytest.raises(LoginFailed):
        await auth.do_login(svc, "bob", PASSWORD, "", "")
    clock.advance(2)
    assert (await auth.do_login(svc, "bob", PASSWORD, "", "")).user.username == "bob"
    # Success clears the count: five more failures are needed for the next lock.
    for _ in range(4):
        with pytest.raises(LoginFailed):
            await auth.do_login(svc, "bob", "wrong password!", "", "")
    assert (await auth.do_login(svc, "bob", PASSWORD, "", "")).user.username == "bob"


async def test_session_timeouts(svc: Services, make_user: Any, clock: FrozenClock) -> None:
    await make_user("bob")
    login = await auth.do_login(svc, "bob", PASSWORD, "", "")
    clock.advance(29 * 60)
    assert await auth.resolve_session(svc, login.token, activity=False) is not None
    clock.advance(60)
    assert await auth.resolve_session(svc, login.token, activity=True) is None
    assert ("session_expired", "bob", "idle") in await audit_log(svc)
    # Once ended, it stays ended.
    clock.advance(-30 * 60)
    assert await auth.resolve_session(svc, login.token, activity=True) is None


async def test_logout_and_other_sessions(svc: Services, make_user: Any, events: list[Event]) -> None:
    await make_user("bob")
    here = await auth.do_login(svc, "bob", PASSWORD, "", "")
    there = await auth.do_login(svc, "bob", PASSWORD, "", "")
    elsewhere = await auth.do_login(svc, "bob", PASSWORD, "", "")
    me = await auth.resolve_session(svc, here.token, activity=True)
    assert me is not None
    actor = actor_for(me.user, me.session_id)
    assert await auth.do_end_other_sessions(svc, actor) == 2
    assert await auth.resolve_session(svc, there.token, activity=True) is None
    assert await auth.resolve_session(svc, elsewhere.token, activity=True) is None
    assert await auth.resolve_session(svc, here.token, activity=True) is not None
    assert len(await auth.my_sessions(svc, me.user.id)) == 1
    events.clear()
    await auth.do_logout(svc, actor)
    assert [e.kind for e in events] == ["session_ended"] and events[0].session_ids == (me.session_id,)
    assert await auth.resolve_session(svc, here.token, activity=True) is None
    assert await auth.my_sessions(svc, me.user.id) == []


async def test_session_tokens_are_stored_hashed(svc: Services, make_user: Any) -> None:
    await make_user("bob")
    login = await auth.do_login(svc, "bob", PASSWORD, "", "")
    assert login.token not in repr(await snapshot(svc))


async def test_concurrent_setup_makes_one_admin(svc: Services) -> None:
    import asyncio

    token = await accounts.do_issue_setup_link(svc)
    assert token
    results = await asyncio.gather(
        *(accounts.do_setup_admin(svc, token, StaffFields(f"root{i}", f"Root Number{i}"), NEW_PASSWORD, "") for i in range(3)),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, Staff)]
    assert len(made) == 1, results
    assert all(isinstance(r, NotFound) for r in results if not isinstance(r, Staff))
    assert len(await accounts.find_staff(svc, "root")) == 1


@pytest.mark.parametrize("purpose", ["invite", "reset"])
async def test_deactivation_cancels_outstanding_links(svc: Services, make_user: Any, root: Staff, purpose: str) -> None:
    if purpose == "invite":
        user, token = await accounts.do_create_staff(svc, actor_for(root), StaffFields("carol", "Carol Jones"))
    else:
        await make_user("carol")
        user, token = await accounts.do_reset_password(svc, actor_for(root), (await accounts.find_staff(svc, "carol"))[0].id)
    assert await accounts.invite_for(svc, token) is not None
    await accounts.do_set_active(svc, actor_for(root), user.id, False)
    await accounts.do_set_active(svc, actor_for(root), user.id, True)
    # The link handed out before the deactivation stays dead.
    assert await accounts.invite_for(svc, token) is None
    with pytest.raises(NotFound):
        await accounts.do_accept_invite(svc, token, NEW_PASSWORD, "")
    assert user.id not in await accounts.pending_invites(svc)
    # A new link works.
    _, fresh = await accounts.do_reset_password(svc, actor_for(root), user.id)
    await accounts.do_accept_invite(svc, fresh, NEW_PASSWORD, "")
    assert (await auth.do_login(svc, "carol", NEW_PASSWORD, "", "")).user.id == user.id


async def test_an_administrator_unlocks_a_locked_account(svc: Services, make_user: Any, root: Staff, clock: FrozenClock) -> None:
    bob = await make_user("bob")
    for _ in range(5):
        with pytest.raises(LoginFailed):
            await auth.do_login(svc, "bob", "wrong password!", "", "")
    locked = await accounts.get_staff(svc, bob.id)
    assert locked is not None and locked.locked_at(clock.now())
    assert locked.locked_until == clock.now() + timedelta(seconds=60)
    with pytest.raises(Forbidden):
        await accounts.do_unlock_account(svc, actor_for(bob), bob.id)
    assert await accounts.do_unlock_account(svc, actor_for(root), bob.id)
    assert not (await accounts.get_staff(svc, bob.id)).locked_at(clock.now())  # type: ignore[union-attr]
    assert (await auth.do_login(svc, "bob", PASSWORD, "", "")).user.id == bob.id
    assert any(a == "account_unlocked" and "was locked until" in d for a, _, d in await audit_log(svc))
    # Nothing to unlock: no change, no audit entry. The failure count starts from zero again.
    assert not await accounts.do_unlock_account(svc, actor_for(root), bob.id)
    assert [a for a, _, _ in await audit_log(svc)].count("account_unlocked") == 1
    with pytest.raises(NotFound):
        await accounts.do_unlock_account(svc, actor_for(root), 424242)


async def test_the_login_message_says_when_accounts_lock_and_whom_to_ask(svc: Services, make_user: Any) -> None:
    await make_user("bob")
    with pytest.raises(LoginFailed) as caught:
        await auth.do_login(svc, "bob", "wrong password!", "", "")
    assert "After 5 wrong passwords" in caught.value.message
    assert "administrator" in caught.value.message


# --- sessions that run out unseen ----------------------------------------------------------


async def session_rows(svc: Services) -> dict[str, tuple[Any, str | None]]:
    from sqlalchemy import select

    from app.store.models import AuthSession

    async with svc.db.reading() as s:
        return {r.id: (r.ended_at, r.end_reason) for r in (await s.execute(select(AuthSession))).scalars()}


async def test_the_sweep_ends_idle_and_lifetime_expired_sessions_once(svc: Services, make_user: Any, clock: FrozenClock, events: list[Event]) -> None:
    from app.lib.tokens import token_hash

    await make_user("bob")
    await make_user("carol")
    old = await auth.do_login(svc, "bob", PASSWORD, "198.51.100.7", "ward pc")  # busy all day
    for _ in range(35):
        clock.advance(20 * 60)
        assert await auth.resolve_session(svc, old.token, activity=True) is not None
    idle = await auth.do_login(svc, "carol", PASSWORD, "198.51.100.8", "phone")  # never used again
    clock.advance(5 * 60)
    assert await auth.resolve_session(svc, old.token, activity=True) is not None
    live = await auth.do_login(svc, "carol", PASSWORD, "198.51.100.9", "laptop")
    clock.advance(5 * 60)
    assert await auth.do_end_expired_sessions(svc) == 0
    clock.advance(21 * 60)  # old: 12 h 11 min since login; idle: 31 min unseen; live: 26 min
    events.clear()
    assert await auth.do_end_expired_sessions(svc) == 2
    rows = await session_rows(svc)
    assert rows[token_hash(old.token)][1] == "lifetime"
    assert rows[token_hash(idle.token)][1] == "idle"
    assert rows[token_hash(live.token)] == (None, None)
    assert [e.kind for e in events] == ["session_ended"]
    assert sorted(events[0].session_ids) == sorted([token_hash(old.token), token_hash(idle.token)])
    async with svc.db.reading() as s:
        expired = [(e.actor_name, e.ip, e.detail) for e in await audit.entries(s, action="session_expired")]
    assert sorted(expired) == [("bob", "198.51.100.7", "lifetime"), ("carol", "198.51.100.8", "idle")]
    # Nothing twice: not by the sweep, not by the request that finds the cookie later.
    events.clear()
    assert await auth.do_end_expired_sessions(svc) == 0
    assert isinstance(await auth.check_session(svc, idle.token, activity=True, ip="192.0.2.99"), auth.EndedSession)
    assert events == []
    async with svc.db.reading() as s:
        assert len(await audit.entries(s, action="session_expired")) == 2


async def test_sweeps_at_once_end_each_session_once(svc: Services, make_user: Any, clock: FrozenClock, events: list[Event]) -> None:
    """Several processes sweep at the same moment: every session is ended and audited once."""
    import asyncio

    await make_user("bob")
    for i in range(6):
        await auth.do_login(svc, "bob", PASSWORD, f"198.51.100.{i}", "")
    clock.advance(31 * 60)
    events.clear()
    counts = await asyncio.gather(*(auth.do_end_expired_sessions(svc) for _ in range(3)))
    assert sum(counts) == 6
    assert sorted(i for e in events for i in e.session_ids) == sorted(await session_rows(svc))
    async with svc.db.reading() as s:
        assert len(await audit.entries(s, action="session_expired")) == 6


async def test_the_request_that_finds_an_expired_session_says_why_and_audits_its_address(svc: Services, make_user: Any, clock: FrozenClock) -> None:
    await make_user("bob")
    login = await auth.do_login(svc, "bob", PASSWORD, "198.51.100.1", "")
    clock.advance(30 * 60)
    found = await auth.check_session(svc, login.token, activity=True, ip="203.0.113.5")
    assert found == auth.EndedSession("idle")
    assert await auth.check_session(svc, login.token, activity=True) == auth.EndedSession("idle")
    assert await auth.check_session(svc, "no such token", activity=True) == auth.EndedSession("unknown")
    async with svc.db.reading() as s:
        assert [(e.ip, e.detail) for e in await audit.entries(s, action="session_expired")] == [("203.0.113.5", "idle")]


async def test_my_sessions_leaves_out_sessions_that_ran_out(svc: Services, make_user: Any, clock: FrozenClock) -> None:
    await make_user("bob")
    here = await auth.do_login(svc, "bob", PASSWORD, "", "")
    await auth.do_login(svc, "bob", PASSWORD, "", "")
    clock.advance(29 * 60)
    me = await auth.resolve_session(svc, here.token, activity=True)
    assert me is not None
    assert len(await auth.my_sessions(svc, me.user.id)) == 2
    clock.advance(60)  # the other one is 30 minutes unseen; nothing has ended its row yet
    assert [i.id for i in await auth.my_sessions(svc, me.user.id)] == [me.session_id]
