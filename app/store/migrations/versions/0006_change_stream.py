"""changes: the change stream (positions), each member's stream floor and ceiling, and a
version of each conversation's member list (the send path's membership cache)

Every message already stored becomes a message change whose position is its id, so a
member's ``from_position`` starts equal to their ``history_from_id``.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False, server_default=""),
        # Positions are never reused on SQLite (a receipt deletes the one it replaces).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_conversation_position", "changes", ["conversation_id", "position"])
    op.create_index("ix_changes_conversation_user_kind", "changes", ["conversation_id", "user_id", "kind"])
    op.create_index("ix_changes_message_id", "changes", ["message_id"])
    op.add_column("memberships", sa.Column("from_position", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("memberships", sa.Column("until_position", sa.BigInteger(), nullable=True))
    op.add_column("conversations", sa.Column("members_version", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "INSERT INTO changes (position, conversation_id, kind, message_id, data) "
        "SELECT id, conversation_id, 'message', id, '' FROM messages"
    )
    op.execute("UPDATE memberships SET from_position = history_from_id")
    # Who had left before the stream existed gets none of it (as v1 resume gave them nothing).
    op.execute("UPDATE memberships SET until_position = from_position WHERE left_at IS NOT NULL")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('changes', 'position'), "
            "(SELECT COALESCE(MAX(position), 0) + 1 FROM changes), false)"
        )


def downgrade() -> None:
    op.drop_column("conversations", "members_version")
    op.drop_column("memberships", "until_position")
    op.drop_column("memberships", "from_position")
    op.drop_index("ix_changes_message_id", table_name="changes")
    op.drop_index("ix_changes_conversation_user_kind", table_name="changes")
    op.drop_index("ix_changes_conversation_position", table_name="changes")
    op.drop_table("changes")
