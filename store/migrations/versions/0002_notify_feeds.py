"""notification rate window and feed poll schedule

Revision ID: 0002
Revises: 0001
Created: 2026-11-25 15:00:00

- `notify_sends`: one row per webhook message sent to a contact (the rolling rate window,
  shared by restarts and by several daemons).
- `feed_cursors.next_poll_at`: when a feed is due again (interval, or backoff after failures).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notify_sends", schema=None) as batch_op:
        batch_op.create_index("ix_notify_sends_contact_at", ["contact", "at"], unique=False)
    with op.batch_alter_table("feed_cursors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_poll_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_cursors", schema=None) as batch_op:
        batch_op.drop_column("next_poll_at")
    with op.batch_alter_table("notify_sends", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_sends_contact_at")
    op.drop_table("notify_sends")
