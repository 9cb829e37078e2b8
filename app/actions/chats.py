"""Conversations and messages: open, create, change, send, read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import Actor
from app.actions.errors import ActionError, Forbidden, NotFound, RateLimited
from app.actions.frames import conversation_frame, message_frame, receipt_frame
from app.lib.text import TextError, clean_body, clean_line
from app.lib.tokens import is_client_msg_id
from app.realtime.events import Event
from app.services import Services
from app.store import audit, chats, staff
from app.store.records import ConversationDetail, ConversationSummary, MessageRecord, Staff

GROUP_ADMIN_ROLES = ("owner", "admin")


@dataclass(frozen=True)
class ConversationView:
    detail: ConversationDetail
    title: str
    messages: list[MessageRecord]
    has_older: bool
    my_role: str
    my_last_read_id: int  # before this view moved it: where "new messages" starts


@dataclass(frozen=True)
class Receipt:
    name: str
    at: datetime | None  # None: reached before times were kept


@dataclass(frozen=True)
class MessageInfo:
    """Who a message of mine has reached and who has read it, with times (WhatsApp's info)."""

    message: MessageRecord
    title: str
    read: list[Receipt]
    delivered: list[Receipt]  # reached a device, not read yet
    waiting: list[str]  # not delivered to any device yet


@dataclass(frozen=True)
class Sent:
    message: MessageRecord
    created: bool  # False: a repeat of a client_msg_id already stored


def _title(detail: ConversationDetail, me: int) -> str:
    if detail.kind == "group":
        return detail.title
    other = next((m for m in detail.members if m.user_id != me), None)
    return other.display_name if other else "(former colleague)"


async def _member_detail(s: AsyncSession, conversation_id: int, user_id: int) -> ConversationDetail:
    detail = await chats.conversation_detail(s, conversation_id)
    if detail is None or detail.member(user_id) is None:
        raise NotFound("No such conversation.")
    return detail


async def list_conversations(svc: Services, user: Staff) -> list[ConversationSummary]:
    async with svc.db.reading() as s:
        return await chats.conversation_summaries(s, user.id)


async def conversation_detail(svc: Services, user: Staff, conversation_id: int) -> ConversationDetail:
    """The conversation with its members; NotFound unless ``user`` is a member."""
    async with svc.db.reading() as s:
        return await _member_detail(s, conversation_id, user.id)


async def view_conversation(
    svc: Services, actor: Actor, conversation_id: int, *, before_id: int | None, mark_read: bool
) -> ConversationView:
    """A page of history; the newest page moves my watermarks (read, or only delivered)."""
    async with svc.db.reading() as s:
        detail = await _member_detail(s, conversation_id, actor.user.id)
        me = detail.member(actor.user.id)
        assert me is not None
        messages, has_older = await chats.messages_page(
            s, conversation_id, before_id=before_id, limit=svc.config["PAGE_SIZE"],
            history_from=me.history_from_id,
        )
    if before_id is None and detail.last_message_id:
        if mark_read:
            await do_mark_read(svc, actor, conversation_id, detail.last_message_id)
        else:
            await do_mark_delivered(svc, actor, conversation_id, detail.last_message_id)
    return ConversationView(
        detail=detail, title=_title(detail, actor.user.id), messages=messages,
        has_older=has_older, my_role=me.role, my_last_read_id=me.last_read_id,
    )


async def _system_line(s: AsyncSession, svc: Services, conversation_id: int, actor: Actor, text: str) -> int:
    return await chats.insert_message(
        s, conversation_id=conversation_id, sender_id=actor.user.id, kind="system", body=text,
        client_msg_id=None, reply_to_id=None, now=svc.clock.now(),
    )


async def publish_message(svc: Services, rec: MessageRecord, floors: dict[int, int]) -> None:
    """Send a message frame to each member as that member may see it.

    ``floors`` maps each recipient to their ``history_from_id``. Recipients who may see the
    whole message share one frame; those who joined after a quoted message get a frame
    whose quote has no text (``MessageRecord.seen_from``), as their pages and resume do.
    """
    variants: dict[MessageRecord, list[int]] = {}
    for user_id, floor in floors.items():
        variants.setdefault(rec.seen_from(floor), []).append(user_id)
    for variant, user_ids in variants.items():
        await svc.publish(Event("message", tuple(sorted(user_ids)), message_frame(variant)))


async def _publish_message(svc: Services, message_id: int, member_ids: list[int]) -> None:
    async with svc.db.reading() as s:
        rec = await chats.message_record(s, message_id)
        floors = await chats.member_floors(s, rec.conversation_id) if rec is not None else {}
    if rec is not None:
        await publish_message(svc, rec, {uid: floors.get(uid, 0) for uid in member_ids})


async def do_open_direct(svc: Services, actor: Actor, username: str) -> int:
    """Return my direct chat with ``username``, creating it on first use."""
    now = svc.clock.now()
    async with svc.db.reading() as s:
        other = await staff.user_row_by_username(s, username)
        if other is None or not other.active:
            raise NotFound("No such colleague.")
        other_id = other.id
    if other_id == actor.user.id:
        raise ActionError("self_chat", "Pick someone other than yourself.")
    key = chats.direct_key(actor.user.id, other_id)
    for _ in range(2):
        async with svc.db.reading() as s:
            existing = await chats.direct_conversation_id(s, key)
        if existing is not None:
            return existing
        try:
            async with svc.db.transaction() as s:
                conv = await chats.add_conversation(s, kind="direct", title="", key=key, created_by=actor.user.id, now=now)
                await chats.add_member(s, conv.id, actor.user.id, "member", now, 0)
                await chats.add_member(s, conv.id, other_id, "member", now, 0)
                conv_id = conv.id
        except IntegrityError:
            continue  # the other person opened it at the same moment; read theirs
        await svc.publish(Event("conversation", (actor.user.id, other_id), conversation_frame("created", conv_id, "direct", "")))
        return conv_id
    raise ActionError("conflict", "Please try again.")


def _group_title(svc: Services, raw: str) -> str:
    try:
        return clean_line(raw, svc.config["GROUP_TITLE_MAX_CHARS"], "The group name")
    except TextError as exc:
        raise ActionError("bad_title", str(exc), field="title") from exc


async def _resolve_usernames(s: AsyncSession, usernames: list[str]) -> list[Staff]:
    wanted = {u.strip().lower() for u in usernames if u.strip()}
    found = [u for u in await staff.staff_by_usernames(s, list(wanted)) if u.active]
    missing = wanted - {u.username for u in found}
    if missing:
        raise ActionError("unknown_members", "Unknown or inactive: " + ", ".join(sorted(missing)) + ".", field="members")
    return found


async def do_create_group(svc: Services, actor: Actor, title: str, usernames: list[str]) -> int:
    """Create a group with me as owner and the named colleagues as members."""
    clean_title = _group_title(svc, title)
    if len(usernames) > svc.config["GROUP_MAX_MEMBERS"]:
        raise ActionError("too_many_members", "Too many members.", field="members")
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        members = [u for u in await _resolve_usernames(s, usernames) if u.id != actor.user.id]
        conv = await chats.add_conversation(s, kind="group", title=clean_title, key=None, created_by=actor.user.id, now=now)
        await chats.add_member(s, conv.id, actor.user.id, "owner", now, 0)
        for u in members:
            await chats.add_member(s, conv.id, u.id, "member", now, 0)
        line = f"{actor.user.display_name} created the group \u201c{clean_title}\u201d"
        if members:
            line += " with " + ", ".join(u.display_name for u in members)
        msg_id = await _system_line(s, svc, conv.id, actor, line)
        await audit.add_entry(s, at=now, action="group_created", actor_id=actor.user.id, actor_name=actor.user.username, conversation_id=conv.id, ip=actor.ip, detail=f"{len(members) + 1} members")
        conv_id = conv.id
    everyone = [actor.user.id, *(u.id for u in members)]
    await svc.publish(Event("conversation", tuple(everyone), conversation_frame("created", conv_id, "group", clean_title)))
    await _publish_message(svc, msg_id, everyone)
    return conv_id


async def _group_for_admin(s: AsyncSession, conversation_id: int, actor: Actor) -> ConversationDetail:
    detail = await _member_detail(s, conversation_id, actor.user.id)
    if detail.kind != "group":
        raise ActionError("not_group", "Only groups can be changed.")
    me = detail.member(actor.user.id)
    if me is None or me.role not in GROUP_ADMIN_ROLES:
        raise Forbidden("Only group admins can do that.")
    return detail


async def do_rename_group(svc: Services, actor: Actor, conversation_id: int, title: str) -> None:
    clean_title = _group_title(svc, title)
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        detail = await _group_for_admin(s, conversation_id, actor)
        if detail.title == clean_title:
            return
        conv = await chats.conversation_row(s, conversation_id)
        assert conv is not None
        conv.title = clean_title
        msg_id = await _system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} renamed the group to \u201c{clean_title}\u201d")
        await audit.add_entry(s, at=now, action="group_renamed", actor_id=actor.user.id, actor_name=actor.user.username, conversation_id=conversation_id, ip=actor.ip)
    ids = [m.user_id for m in detail.members]
    await svc.publish(Event("conversation", tuple(ids), conversation_frame("renamed", conversation_id, "group", clean_title)))
    await _publish_message(svc, msg_id, ids)


async def do_add_members(svc: Services, actor: Actor, conversation_id: int, usernames: list[str]) -> None:
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        detail = await _group_for_admin(s, conversation_id, actor)
        if not any(u.strip() for u in usernames):
            raise ActionError("no_members", "Tick the colleagues to add first.", field="members")
        current = {m.user_id for m in detail.members}
        new = [u for u in await _resolve_usernames(s, usernames) if u.id not in current]
        if not new:
            raise ActionError("no_new_members", "Those colleagues are already in the group.", field="members")
        if len(current) + len(new) > svc.config["GROUP_MAX_MEMBERS"]:
            raise ActionError("too_many_members", "Too many members.", field="members")
        conv = await chats.conversation_row(s, conversation_id)
        assert conv is not None
        for u in new:
            # New members see the history from the moment they join.
            await chats.add_member(s, conversation_id, u.id, "member", now, conv.last_message_id)
            await audit.add_entry(s, at=now, action="member_added", actor_id=actor.user.id, actor_name=actor.user.username, target_user_id=u.id, conversation_id=conversation_id, ip=actor.ip)
        msg_id = await _system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} added " + ", ".join(u.display_name for u in new))
    ids = sorted(current | {u.id for u in new})
    await svc.publish(Event("conversation", tuple(ids), conversation_frame("member_added", conversation_id, "group", detail.title, user_ids=[u.id for u in new])))
    await _publish_message(svc, msg_id, ids)


async def _leave(svc: Services, s: AsyncSession, detail: ConversationDetail, user_id: int) -> None:
    """Mark a member gone; if no group admin remains, the longest-standing member becomes one."""
    row = await chats.membership_row(s, detail.id, user_id)
    assert row is not None
    row.left_at = svc.clock.now()
    remaining = [m for m in detail.members if m.user_id != user_id]
    if remaining and not any(m.role in GROUP_ADMIN_ROLES for m in remaining):
        heir = await chats.membership_row(s, detail.id, remaining[0].user_id)
        assert heir is not None
        heir.role = "admin"


async def do_remove_member(svc: Services, actor: Actor, conversation_id: int, user_id: int) -> None:
    if user_id == actor.user.id:
        await do_leave_group(svc, actor, conversation_id)
        return
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        detail = await _group_for_admin(s, conversation_id, actor)
        target = detail.member(user_id)
        if target is None:
            raise NotFound("That colleague is not in this group.")
        if target.role == "owner":
            raise Forbidden("The group's owner cannot be removed.")
        await _leave(svc, s, detail, user_id)
        msg_id = await _system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} removed {target.display_name}")
        await audit.add_entry(s, at=now, action="member_removed", actor_id=actor.user.id, actor_name=actor.user.username, target_user_id=user_id, conversation_id=conversation_id, ip=actor.ip)
    ids = [m.user_id for m in detail.members]
    await svc.publish(Event("conversation", tuple(ids), conversation_frame("member_removed", conversation_id, "group", detail.title, user_ids=[user_id])))
    await _publish_message(svc, msg_id, [i for i in ids if i != user_id])


async def do_leave_group(svc: Services, actor: Actor, conversation_id: int) -> None:
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        detail = await _member_detail(s, conversation_id, actor.user.id)
        if detail.kind != "group":
            raise ActionError("not_group", "You can only leave groups.")
        await _leave(svc, s, detail, actor.user.id)
        msg_id = await _system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} left")
        await audit.add_entry(s, at=now, action="member_left", actor_id=actor.user.id, actor_name=actor.user.username, target_user_id=actor.user.id, conversation_id=conversation_id, ip=actor.ip)
    ids = [m.user_id for m in detail.members]
    await svc.publish(Event("conversation", tuple(ids), conversation_frame("member_removed", conversation_id, "group", detail.title, user_ids=[actor.user.id])))
    await _publish_message(svc, msg_id, [i for i in ids if i != actor.user.id])


async def do_send_message(
    svc: Services,
    actor: Actor,
    conversation_id: int,
    body: str,
    client_msg_id: str,
    reply_to: int | None = None,
) -> Sent:
    """Store a message once per (sender, client_msg_id), then wake the members.

    A repeat of a client_msg_id returns the stored message and publishes nothing, so a
    double-clicked form or a resend after reconnect never makes a second message.
    """
    if not is_client_msg_id(client_msg_id):
        raise ActionError("bad_client_msg_id", "client_msg_id must be a UUID.", field="client_msg_id")
    try:
        text = clean_body(body, svc.config["MESSAGE_MAX_CHARS"])
    except TextError as exc:
        raise ActionError("bad_body", str(exc), field="body") from exc
    # The hot path: two light reads, one short write transaction, no read-back.
    async with svc.db.reading() as s:
        members = await chats.member_floors(s, conversation_id)
        if actor.user.id not in members:
            raise NotFound("No such conversation.")
        earlier = await chats.message_by_client_id(s, actor.user.id, client_msg_id)
        if earlier is not None:
            return _repeat(earlier, conversation_id)
        quoted = None
        if reply_to is not None:
            quoted = await chats.message_record(s, reply_to)
            if quoted is None or quoted.conversation_id != conversation_id or quoted.id <= members[actor.user.id]:
                raise ActionError("bad_reply_to", "The message you reply to is not in this conversation.", field="reply_to")
    wait = svc.message_buckets.take(actor.user.id)
    if wait:
        raise RateLimited(wait)
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as s:
            msg_id = await chats.insert_message(
                s, conversation_id=conversation_id, sender_id=actor.user.id, kind="text",
                body=text, client_msg_id=client_msg_id, reply_to_id=reply_to, now=now,
            )
            await chats.raise_watermarks(s, conversation_id, actor.user.id, read_id=msg_id)
    except IntegrityError:
        # The same client_msg_id committed by a concurrent request (double submit).
        async with svc.db.reading() as s:
            earlier = await chats.message_by_client_id(s, actor.user.id, client_msg_id)
        if earlier is None:
            raise
        return _repeat(earlier, conversation_id)
    rec = MessageRecord(
        id=msg_id, conversation_id=conversation_id, sender_id=actor.user.id,
        sender_name=actor.user.display_name, kind="text", body=text, created_at=now,
        client_msg_id=client_msg_id, reply_to_id=reply_to,
        reply_sender_name=quoted.sender_name if quoted else None,
        reply_body=quoted.body if quoted else None,
    )
    await publish_message(svc, rec, members)
    return Sent(rec, True)


def _repeat(earlier: MessageRecord, conversation_id: int) -> Sent:
    if earlier.conversation_id != conversation_id:
        raise ActionError("client_msg_id_reused", "That client_msg_id was used for another conversation.", field="client_msg_id")
    return Sent(earlier, False)


async def _move_watermarks(svc: Services, actor: Actor, conversation_id: int, *, read_id: int | None, delivered_id: int | None) -> bool:
    """Raise my watermarks and tell whoever's ticks changed.

    In conversations of up to RECEIPTS_ALL_MEMBERS_MAX members everyone hears (live "read
    by" lists); in bigger groups only the senders of the newly covered messages and my own
    other tabs do, or each message would cost members x members receipt frames.
    """
    async with svc.db.transaction() as s:
        members = await chats.member_floors(s, conversation_id)
        if actor.user.id not in members:
            raise NotFound("No such conversation.")
        before = await chats.membership_row(s, conversation_id, actor.user.id)
        assert before is not None
        old_low = min(before.last_read_id, before.last_delivered_id)
        conv = await chats.conversation_row(s, conversation_id)
        assert conv is not None
        limit = conv.last_message_id
        moved = await chats.raise_watermarks(
            s, conversation_id, actor.user.id,
            read_id=min(read_id, limit) if read_id is not None else None,
            delivered_id=min(delivered_id, limit) if delivered_id is not None else None,
        )
        if not moved:
            return False
        await s.refresh(before)
        read, delivered = before.last_read_id, before.last_delivered_id
        await chats.record_watermark_move(s, conversation_id, actor.user.id, read_id=read, delivered_id=delivered, now=svc.clock.now())
        if len(members) <= svc.config["RECEIPTS_ALL_MEMBERS_MAX"]:
            told = tuple(members)
        else:
            senders = await chats.senders_between(s, conversation_id, old_low, max(read, delivered))
            told = tuple({actor.user.id, *senders})
    await svc.publish(Event("receipt", told, receipt_frame(conversation_id, actor.user.id, read, delivered)))
    return True


async def do_mark_read(svc: Services, actor: Actor, conversation_id: int, up_to_id: int) -> bool:
    """Move my read watermark (and so delivered) up to ``up_to_id``; never back."""
    return await _move_watermarks(svc, actor, conversation_id, read_id=up_to_id, delivered_id=None)


async def do_mark_delivered(svc: Services, actor: Actor, conversation_id: int, up_to_id: int) -> bool:
    return await _move_watermarks(svc, actor, conversation_id, read_id=None, delivered_id=up_to_id)


async def message_for(svc: Services, user: Staff, conversation_id: int, message_id: int) -> MessageRecord:
    """One message of a conversation I am in (the reply preview)."""
    async with svc.db.reading() as s:
        me = (await _member_detail(s, conversation_id, user.id)).member(user.id)
        rec = await chats.message_record(s, message_id)
    if rec is None or rec.conversation_id != conversation_id or me is None or rec.id <= me.history_from_id:
        raise NotFound("No such message.")
    return rec


async def messages_after(svc: Services, user: Staff, after_id: int, limit: int) -> list[MessageRecord]:
    """What I missed: messages after ``after_id`` in my conversations, oldest first."""
    async with svc.db.reading() as s:
        return await chats.messages_after(s, user.id, after_id, limit)


async def message_info(svc: Services, user: Staff, conversation_id: int, message_id: int) -> MessageInfo:
    """The info view of one of my messages: every member it was sent to (the members now
    who were there when it was sent), read / delivered with times, or still waiting.
    Only the sender may look; for anyone else the message does not exist."""
    async with svc.db.reading() as s:
        detail = await _member_detail(s, conversation_id, user.id)
        rec = await chats.message_record(s, message_id)
        if rec is None or rec.conversation_id != conversation_id or rec.sender_id != user.id or rec.kind != "text":
            raise NotFound("No such message.")
        delivered_at, read_at = await chats.receipt_times(s, conversation_id, message_id)
    read: list[Receipt] = []
    delivered: list[Receipt] = []
    waiting: list[str] = []
    for m in detail.members:
        if m.user_id == user.id or m.history_from_id >= message_id:
            continue  # me, and colleagues added after it was sent
        if m.last_read_id >= message_id:
            read.append(Receipt(m.display_name, read_at.get(m.user_id)))
        elif m.last_delivered_id >= message_id:
            delivered.append(Receipt(m.display_name, delivered_at.get(m.user_id)))
        else:
            waiting.append(m.display_name)
    return MessageInfo(message=rec, title=_title(detail, user.id), read=read, delivered=delivered, waiting=waiting)
