"""Plain dataclasses that leave the store and travel through actions to the doors.

Templates and events never see ORM objects. Every layer may import this module (it is the
shared vocabulary of data, as app/vocab.py is of names); it imports nothing of the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from app.vocab import ConversationKind, StaffRole


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    display_name: str
    department: str
    job_title: str
    role: str
    active: bool
    has_password: bool
    # Set after too many wrong passwords; the account is locked while this lies ahead.
    locked_until: datetime | None = None
    # Wrong passwords in a row (volatile: left out of comparisons).
    failed_logins: int = field(default=0, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    def locked_at(self, now: datetime) -> bool:
        """Tell whether logins are refused at ``now`` because of wrong passwords."""
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class StaffPage:
    """One page of a staff search: numbered from 1; ``has_next`` if another page follows."""

    people: list[Staff]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class SessionInfo:
    id: str  # the SHA-256 of the cookie's session id
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    user_agent: str
    ip: str
    ended_at: datetime | None = None
    end_reason: str | None = None


@dataclass(frozen=True)
class MessageRecord:
    id: int
    conversation_id: int
    sender_id: int | None
    sender_name: str
    kind: str
    body: str
    created_at: datetime
    client_msg_id: str | None
    reply_to_id: int | None
    reply_sender_name: str | None
    reply_body: str | None

    def seen_from(self, history_from_id: int) -> MessageRecord:
        """The message as a member whose history starts after ``history_from_id`` may see it:
        a quote of a message from before they joined keeps its link but loses its text and
        sender. The one rule for pages, resume, JSON and live frames."""
        if self.reply_to_id is not None and self.reply_to_id <= history_from_id and (self.reply_body or self.reply_sender_name):
            return replace(self, reply_body="", reply_sender_name="")
        return self


@dataclass(frozen=True)
class AttachmentRecord:
    """A shared file (issue 11). ``name`` is the cleaned display name, ``mime`` and ``kind``
    come from the sniffed bytes, ``size`` and ``sha256`` are those of the stored (cleaned)
    bytes. The blob keys never leave the actions."""

    id: int
    conversation_id: int
    uploader_id: int
    message_id: int | None
    client_upload_id: str
    name: str
    kind: str  # AttachmentKind
    mime: str
    size: int
    sha256: str
    state: str  # AttachmentState
    blob_key: str
    thumb_key: str | None
    width: int | None
    height: int | None
    pages: int | None
    created_at: datetime


@dataclass(frozen=True)
class ConversationSummary:
    id: int
    kind: str
    title: str
    my_role: str
    last_message: MessageRecord | None
    unread: int
    other_user_id: int | None  # the other person, in a direct chat


@dataclass(frozen=True)
class MemberRecord:
    user_id: int
    username: str
    display_name: str
    department: str
    job_title: str
    role: str
    last_read_id: int
    last_delivered_id: int
    active: bool
    history_from_id: int = 0


@dataclass(frozen=True)
class MembershipRecord:
    """One current member's place in a conversation, with the conversation's own fields
    (what the access check returns: enough for most actions without the member list)."""

    conversation_id: int
    kind: str
    title: str
    last_message_id: int
    user_id: int
    role: str
    joined_at: datetime
    history_from_id: int
    last_read_id: int
    last_delivered_id: int


@dataclass(frozen=True)
class ConversationDetail:
    id: int
    kind: str
    title: str
    created_at: datetime
    last_message_id: int
    members: list[MemberRecord]

    def member(self, user_id: int) -> MemberRecord | None:
        return next((m for m in self.members if m.user_id == user_id), None)

    def title_for(self, user_id: int) -> str:
        """The name ``user_id`` sees: a group's title, or the other person of a direct chat."""
        if self.kind == ConversationKind.GROUP:
            return self.title
        other = next((m for m in self.members if m.user_id != user_id), None)
        return other.display_name if other else "(former colleague)"


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    action: str
    actor_id: int | None
    actor_name: str
    target_user_id: int | None
    target_name: str | None
    conversation_id: int | None
    ip: str
    detail: str


@dataclass(frozen=True)
class InviteRecord:
    purpose: str
    user_id: int | None
    expires_at: datetime
