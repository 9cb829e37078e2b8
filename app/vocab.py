"""The closed vocabularies of MedChat, one ``StrEnum`` each.

Stored as their string values (the columns are plain strings, so a value added here needs
no migration) and equal to those strings, so ``row.kind == ConversationKind.GROUP`` and a
JSON frame carrying ``"group"`` agree. Every layer may import this module; it imports
nothing of the app.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class StaffRole(StrEnum):
    """What an account may do in the hospital's MedChat."""

    MEMBER = "member"
    ADMIN = "admin"


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


class MemberRole(StrEnum):
    """A member's standing in one conversation (groups: the admin renames, adds, removes)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class MessageKind(StrEnum):
    TEXT = "text"
    SYSTEM = "system"  # "Alice added Bob": written by an action, never by a person
    FILES = "files"  # one or more attachments; the body is the caption (issue 11)


class AttachmentKind(StrEnum):
    """What a shared file is, by its sniffed bytes (app/lib/sniff.py), never its name."""

    IMAGE = "image"
    PDF = "pdf"
    TEXT = "text"
    DOCUMENT = "document"  # Word, Excel, PowerPoint (OOXML without active content)


class AttachmentState(StrEnum):
    """A shared file's life (docs/files-plan.md): staged by its uploader, then linked to a
    message and scanned; only ``ready`` is ever served."""

    STAGED = "staged"  # uploaded and cleaned, not yet part of a message; the uploader's alone
    SCANNING = "scanning"  # part of a message, waiting for the virus scanner
    HELD = "held"  # the scanner could not be reached or could not decide: never served
    READY = "ready"
    REMOVED = "removed"  # failed the scan, or deleted: the bytes are gone


class LinkPurpose(StrEnum):
    """The one-time links (store/invites.py)."""

    SETUP = "setup"
    INVITE = "invite"
    RESET = "reset"


class EventKind(StrEnum):
    """What an action publishes to the open sockets after its commit (app/realtime/events.py)."""

    MESSAGE = "message"
    RECEIPT = "receipt"
    CONVERSATION = "conversation"
    TYPING = "typing"
    PRESENCE = "presence"
    SESSION_ENDED = "session_ended"
    SYNC_NEEDED = "sync_needed"
    # A process says it is alive (every third of PRESENCE_INSTANCE_TTL_SECONDS) or that it
    # is stopping; ``origin`` is its hub's ``instance_id``. Never sent to a socket.
    INSTANCE_ALIVE = "instance_alive"
    INSTANCE_GONE = "instance_gone"


class ChangeKind(StrEnum):
    """What one entry of the change stream is (app/store/changes.py; docs/protocol.md)."""

    MESSAGE = "message"
    RECEIPT = "receipt"
    CREATED = "created"
    RENAMED = "renamed"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"


class AuditAction(StrEnum):
    """Every entry the audit log can hold; the admin's filter offers exactly these."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    ACCOUNT_LOCKED = "account_locked"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session_expired"
    SESSION_REVOKED = "session_revoked"
    SESSIONS_REVOKED = "sessions_revoked"
    RATE_LIMITED = "rate_limited"
    CSRF_REFUSED = "csrf_refused"
    SETUP_LINK_ISSUED = "setup_link_issued"
    ACCOUNT_CREATED = "account_created"
    PASSWORD_SET = "password_set"  # noqa: S105 - an audit action, not a password
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an audit action, not a password
    ACCOUNT_DEACTIVATED = "account_deactivated"
    ACCOUNT_REACTIVATED = "account_reactivated"
    ACCOUNT_UNLOCKED = "account_unlocked"
    ROLE_CHANGED = "role_changed"
    GROUP_CREATED = "group_created"
    GROUP_RENAMED = "group_renamed"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    MEMBER_LEFT = "member_left"
    FILE_REFUSED = "file_refused"  # an upload that is not a file we share (type, size, damage)


class CloseCode(IntEnum):
    """WebSocket close codes (docs/protocol.md): the socket door and the hub both close."""

    NORMAL = 1000
    TOO_BIG = 1009
    HEARTBEAT = 4000  # no pong within a heartbeat
    SESSION_ENDED = 4401  # signed out, idle, deactivated: log in again
    SLOW_CONSUMER = 4408  # the send queue overflowed: reconnect and resume
    RESYNC = 4409  # too far behind to resume: reload
