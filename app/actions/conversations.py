"""Conversations and membership: open a direct chat, create and change groups, leave."""

from __future__ import annotations

from app.actions import Actor, audit
from app.actions.access import access_conversation
from app.actions.errors import ActionError, Forbidden, NotFound
from app.actions.messages import add_system_line
from app.actions.stream import Work, append_conversation, append_stored_message, unit_of_work
from app.lib.text import TextError, clean_line
from app.lib.usernames import is_username, normal_username
from app.records import ConversationDetail, ConversationSummary, MembershipRecord, Staff
from app.services import Services
from app.store import conversations, staff
from app.store.db import Conflict, Session
from app.vocab import AuditAction, ChangeKind, ConversationKind, MemberRole

GROUP_ADMIN_ROLES = (MemberRole.OWNER, MemberRole.ADMIN)


async def list_conversations(svc: Services, user: Staff) -> list[ConversationSummary]:
    async with svc.db.reading() as s:
        return await conversations.conversation_summaries(s, user.id)


async def _detail(s: Session, user: Staff, conversation_id: int) -> tuple[MembershipRecord, ConversationDetail]:
    mine = await access_conversation(s, user, conversation_id)
    detail = await conversations.conversation_detail(s, conversation_id)
    assert detail is not None  # a membership has its conversation
    return mine, detail


async def conversation_detail(svc: Services, user: Staff, conversation_id: int) -> ConversationDetail:
    """The conversation with its members; NotFound unless ``user`` is a member."""
    async with svc.db.reading() as s:
        return (await _detail(s, user, conversation_id))[1]


async def do_open_direct(svc: Services, actor: Actor, username: str) -> int:
    """Return my direct chat with ``username``, creating it on first use."""
    now = svc.clock.now()
    async with svc.db.reading() as s:
        other = await staff.staff_named(s, username)
    if other is None or not other.active:
        raise NotFound("No such colleague.")
    if other.id == actor.user.id:
        raise ActionError("self_chat", "Pick someone other than yourself.")
    key = conversations.direct_key(actor.user.id, other.id)
    for _ in range(2):
        async with svc.db.reading() as s:
            existing = await conversations.direct_conversation_id(s, key)
        if existing is not None:
            return existing
        try:
            async with unit_of_work(svc) as work:
                s = work.s
                conv_id = await conversations.add_conversation(s, kind=ConversationKind.DIRECT, title="", key=key, created_by=actor.user.id, now=now)
                await conversations.add_member(s, conv_id, actor.user.id, MemberRole.MEMBER, now, 0)
                await conversations.add_member(s, conv_id, other.id, MemberRole.MEMBER, now, 0)
                both = [actor.user.id, other.id]
                await append_conversation(work, ChangeKind.CREATED, conv_id, ConversationKind.DIRECT, "", both, starts=both)
        except Conflict:
            continue  # the other person opened it at the same moment; read theirs
        return conv_id
    raise ActionError("conflict", "Please try again.")


def _group_title(svc: Services, raw: str) -> str:
    try:
        return clean_line(raw, svc.settings.group_title_max_chars, "The group name")
    except TextError as exc:
        raise ActionError("bad_title", str(exc), field="title") from exc


async def _resolve_usernames(s: Session, usernames: list[str]) -> list[Staff]:
    """The active accounts named; any name that is unknown, inactive or no username at all
    (NUL and other junk never reach the database) is refused, naming the valid ones."""
    wanted = {normal_username(u) for u in usernames if u.strip()}
    valid = {u for u in wanted if is_username(u)}
    found = [u for u in await staff.staff_by_usernames(s, sorted(valid)) if u.active]
    missing = sorted(valid - {u.username for u in found})
    if len(valid) < len(wanted):
        missing.append("names that are not usernames")
    if missing:
        raise ActionError("unknown_members", "Unknown or inactive: " + ", ".join(missing) + ".", field="members")
    return found


async def do_create_group(svc: Services, actor: Actor, title: str, usernames: list[str]) -> int:
    """Create a group with me as owner and the named colleagues as members."""
    clean_title = _group_title(svc, title)
    if len(usernames) > svc.settings.group_max_members:
        raise ActionError("too_many_members", "Too many members.", field="members")
    now = svc.clock.now()
    async with unit_of_work(svc) as work:
        s = work.s
        members = [u for u in await _resolve_usernames(s, usernames) if u.id != actor.user.id]
        conv_id = await conversations.add_conversation(s, kind=ConversationKind.GROUP, title=clean_title, key=None, created_by=actor.user.id, now=now)
        await conversations.add_member(s, conv_id, actor.user.id, MemberRole.OWNER, now, 0)
        for u in members:
            await conversations.add_member(s, conv_id, u.id, MemberRole.MEMBER, now, 0)
        line = f"{actor.user.display_name} created the group \u201c{clean_title}\u201d"
        if members:
            line += " with " + ", ".join(u.display_name for u in members)
        msg_id = await add_system_line(s, svc, conv_id, actor, line)
        await audit.record(s, actor, AuditAction.GROUP_CREATED, at=now, conversation_id=conv_id, detail=f"{len(members) + 1} members")
        everyone = [actor.user.id, *(u.id for u in members)]
        await append_conversation(work, ChangeKind.CREATED, conv_id, ConversationKind.GROUP, clean_title, everyone, starts=everyone)
        await append_stored_message(work, msg_id, dict.fromkeys(everyone, 0))
    return conv_id


async def _group_for_admin(s: Session, conversation_id: int, actor: Actor) -> tuple[MembershipRecord, ConversationDetail]:
    mine, detail = await _detail(s, actor.user, conversation_id)
    if mine.kind != ConversationKind.GROUP:
        raise ActionError("not_group", "Only groups can be changed.")
    if mine.role not in GROUP_ADMIN_ROLES:
        raise Forbidden("Only group admins can do that.")
    return mine, detail


async def do_rename_group(svc: Services, actor: Actor, conversation_id: int, title: str) -> None:
    clean_title = _group_title(svc, title)
    now = svc.clock.now()
    async with unit_of_work(svc) as work:
        s = work.s
        _mine, detail = await _group_for_admin(s, conversation_id, actor)
        if detail.title == clean_title:
            return
        await conversations.set_title(s, conversation_id, clean_title)
        msg_id = await add_system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} renamed the group to \u201c{clean_title}\u201d")
        await audit.record(s, actor, AuditAction.GROUP_RENAMED, at=now, conversation_id=conversation_id)
        ids = [m.user_id for m in detail.members]
        await append_conversation(work, ChangeKind.RENAMED, conversation_id, ConversationKind.GROUP, clean_title, ids)
        await append_stored_message(work, msg_id, await conversations.member_floors(s, conversation_id))


async def do_add_members(svc: Services, actor: Actor, conversation_id: int, usernames: list[str]) -> None:
    now = svc.clock.now()
    async with unit_of_work(svc) as work:
        s = work.s
        mine, detail = await _group_for_admin(s, conversation_id, actor)
        if not any(u.strip() for u in usernames):
            raise ActionError("no_members", "Tick the colleagues to add first.", field="members")
        current = {m.user_id for m in detail.members}
        new = [u for u in await _resolve_usernames(s, usernames) if u.id not in current]
        if not new:
            raise ActionError("no_new_members", "Those colleagues are already in the group.", field="members")
        if len(current) + len(new) > svc.settings.group_max_members:
            raise ActionError("too_many_members", "Too many members.", field="members")
        # The system line first: its insert takes the message-order lock (PostgreSQL) or the
        # write lock (SQLite), so every message committed before it has a lower id. New
        # members see the history from that line on; a message sent while this transaction
        # ran can never fall inside their history (its live frame never reached them).
        msg_id = await add_system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} added " + ", ".join(u.display_name for u in new))
        for u in new:
            await conversations.add_member(s, conversation_id, u.id, MemberRole.MEMBER, now, msg_id - 1)
            await audit.record(s, actor, AuditAction.MEMBER_ADDED, at=now, target_user_id=u.id, conversation_id=conversation_id)
        ids = sorted(current | {u.id for u in new})
        new_ids = [u.id for u in new]
        # The new members' stream starts with this change (then the system line).
        await append_conversation(
            work, ChangeKind.MEMBER_ADDED, conversation_id, ConversationKind.GROUP, detail.title, ids,
            user_ids=new_ids, history_from_id=msg_id - 1, starts=new_ids,
        )
        await append_stored_message(work, msg_id, await conversations.member_floors(s, conversation_id))


async def _leave(svc: Services, s: Session, conversation_id: int, user_id: int) -> None:
    """Mark a member gone; if no group admin remains, the longest-standing member becomes one."""
    await conversations.end_membership(s, conversation_id, user_id, svc.clock.now(), admin_roles=GROUP_ADMIN_ROLES)


async def do_remove_member(svc: Services, actor: Actor, conversation_id: int, user_id: int) -> None:
    if user_id == actor.user.id:
        await do_leave_group(svc, actor, conversation_id)
        return
    now = svc.clock.now()
    async with unit_of_work(svc) as work:
        s = work.s
        _mine, detail = await _group_for_admin(s, conversation_id, actor)
        target = detail.member(user_id)
        if target is None:
            raise NotFound("That colleague is not in this group.")
        if target.role == MemberRole.OWNER:
            raise Forbidden("The group's owner cannot be removed.")
        await _leave(svc, s, conversation_id, user_id)
        msg_id = await add_system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} removed {target.display_name}")
        await audit.record(s, actor, AuditAction.MEMBER_REMOVED, at=now, target_user_id=user_id, conversation_id=conversation_id)
        await _member_gone(work, conversation_id, detail, user_id, msg_id)


async def do_leave_group(svc: Services, actor: Actor, conversation_id: int) -> None:
    now = svc.clock.now()
    async with unit_of_work(svc) as work:
        s = work.s
        mine, detail = await _detail(s, actor.user, conversation_id)
        if mine.kind != ConversationKind.GROUP:
            raise ActionError("not_group", "You can only leave groups.")
        await _leave(svc, s, conversation_id, actor.user.id)
        msg_id = await add_system_line(s, svc, conversation_id, actor, f"{actor.user.display_name} left")
        await audit.record(s, actor, AuditAction.MEMBER_LEFT, at=now, target_user_id=actor.user.id, conversation_id=conversation_id)
        await _member_gone(work, conversation_id, detail, actor.user.id, msg_id)


async def _member_gone(work: Work, conversation_id: int, detail: ConversationDetail, user_id: int, msg_id: int) -> None:
    """The removal (the gone member's last change: they hear it, then nothing) and the
    system line for those who stay."""
    ids = [m.user_id for m in detail.members]
    await append_conversation(work, ChangeKind.MEMBER_REMOVED, conversation_id, ConversationKind.GROUP, detail.title, ids, user_ids=[user_id])
    await append_stored_message(work, msg_id, await conversations.member_floors(work.s, conversation_id))
