"""watermark_moves: an index for the read side of message info times

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_watermark_moves_conversation_user_read", "watermark_moves", ["conversation_id", "user_id", "read_id"])


def downgrade() -> None:
    op.drop_index("ix_watermark_moves_conversation_user_read", table_name="watermark_moves")
