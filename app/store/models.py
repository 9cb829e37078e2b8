"""The schema, as SQLAlchemy 2 declarative models. Migrations live in ``migrations/``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.vocab import AttachmentState, MemberRole, MessageKind, StaffRole

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100), default="")
    job_title: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16), default=StaffRole.MEMBER)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the last socket of the user closed (presence "last seen").
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthSession(Base):
    """A login. The cookie carries a random id; this row keys on its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # ConversationKind
    title: Mapped[str] = mapped_column(String(100), default="")
    # "smaller_id:larger_id" for direct chats, so two people have one direct chat.
    direct_key: Mapped[str | None] = mapped_column(String(50), unique=True, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Newest message id, kept in the same transaction as the insert; orders the chat list.
    last_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Raised with every change of the member list (added, removed, left): a process's cached
    # member list is good while this is unchanged (app/store/conversations.py).
    members_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "memberships"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8), default=MemberRole.MEMBER)
    last_read_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_delivered_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Messages up to this id were sent before the member (last) joined: not theirs to see.
    history_from_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Changes of the stream at or below this position happened before the member (last)
    # joined: not theirs (the change that added them is their first).
    from_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Set when the member is removed or leaves: the change that removed them, their last.
    until_position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(8), default=MessageKind.TEXT)
    client_msg_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
    )


class Change(Base):
    """One entry of the change stream: everything a member's device must learn of, in one
    order (``position``) that commits in order. Resume is "every change after P in my
    conversations" (app/store/changes.py). A message change names its message; a receipt
    or removal names the member it is about (``user_id``); ``data`` holds the rest of the
    frame as JSON (titles, member lists, watermarks)."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_conversation_position", "conversation_id", "position"),
        Index("ix_changes_conversation_user_kind", "conversation_id", "user_id", "kind"),
        Index("ix_changes_message_id", "message_id"),
        # SQLite would give a new row the highest rowid + 1: after a receipt replaced the
        # newest change, its position again. AUTOINCREMENT never reuses one.
        {"sqlite_autoincrement": True},
    )

    position: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # ChangeKind
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[str] = mapped_column(Text, default="", server_default="")


class WatermarkMove(Base):
    """A member's delivered/read watermarks after one move, and when: the times in a
    message's info view ("read 10:42") are the first move that reached the message."""

    __tablename__ = "watermark_moves"
    __table_args__ = (
        Index("ix_watermark_moves_conversation_user", "conversation_id", "user_id", "delivered_id"),
        Index("ix_watermark_moves_conversation_user_read", "conversation_id", "user_id", "read_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    read_id: Mapped[int] = mapped_column(BigInteger)
    delivered_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invite(Base):
    """A one-time link: first-administrator setup, a new account, or a password reset."""

    __tablename__ = "invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(8))  # LinkPurpose
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """Who did what, when, from where. Never message text, passwords or tokens."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)  # AuditAction
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    # The name typed at a failed login is kept (truncated) so attacks on an account show.
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(200), default="")


class Attachment(Base):
    """A shared file (issue 11; docs/files-plan.md). Staged by its uploader (``message_id``
    NULL), then linked to a message in the message's own transaction. The bytes live in the
    blob store under ``blob_key`` (random, never a name or a hash of the content)."""

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("uploader_id", "client_upload_id", name="uq_attachments_uploader_client_upload"),
        Index("ix_attachments_state_scan_due_at", "state", "scan_due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    client_upload_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # AttachmentKind
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))  # of the stored (cleaned) bytes
    original_sha256: Mapped[str] = mapped_column(String(64))  # as uploaded, for the audit
    blob_key: Mapped[str] = mapped_column(String(64), unique=True)
    thumb_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(10), default=AttachmentState.STAGED)
    removed_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scan_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    scan_attempts: Mapped[int] = mapped_column(Integer, default=0)
    scan_claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    scan_result: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BlobDeletion(Base):
    """A blob to delete once its row is gone (a refused, expired or removed file): the row
    and this entry commit together, the bytes go after, retried until they are gone."""

    __tablename__ = "blob_deletions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
