"""attachments: shared files (issue 11), and blob_deletions: bytes to delete after their row

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("conversation_id", BigId, sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uploader_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("client_upload_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("mime", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(64), nullable=False, unique=True),
        sa.Column("thumb_key", sa.String(64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("removed_reason", sa.String(16), nullable=True),
        sa.Column("scan_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scan_attempts", sa.Integer(), nullable=False),
        sa.Column("scan_claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scan_result", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("uploader_id", "client_upload_id", name="uq_attachments_uploader_client_upload"),
    )
    op.create_index("ix_attachments_conversation_id", "attachments", ["conversation_id"])
    op.create_index("ix_attachments_message_id", "attachments", ["message_id"])
    op.create_index("ix_attachments_state_scan_due_at", "attachments", ["state", "scan_due_at"])
    op.create_table(
        "blob_deletions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_blob_deletions_due_at", "blob_deletions", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_blob_deletions_due_at", table_name="blob_deletions")
    op.drop_table("blob_deletions")
    op.drop_index("ix_attachments_state_scan_due_at", table_name="attachments")
    op.drop_index("ix_attachments_message_id", table_name="attachments")
    op.drop_index("ix_attachments_conversation_id", table_name="attachments")
    op.drop_table("attachments")
