"""Outbox: retry until delivered or given up (issue 13).

An escalation notice is no longer dropped after a number of attempts: it stays `pending`
(retried at a capped interval) until it is delivered or a person gives up on it. This adds who
gave up, when and why (`given_up_at`, `given_up_by`, `give_up_reason`; status `given_up`), and
puts rows an earlier version left `dead` back in the queue, due at once. On PostgreSQL a
supervisor's session may give up on a notice or retry it, a dispatcher's retry it (column
UPDATE grants on outbox; the record entry goes with it).

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# What a supervisor's own session may change on a notice (give up, retry); a dispatcher's
# only when it is next tried (retry). Delivery itself stays the daemon's (0004).
GIVE_UP = "status, given_up_at, given_up_by, give_up_reason, next_attempt_at"


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as b:
        b.add_column(sa.Column("given_up_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        b.add_column(sa.Column("given_up_by", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("give_up_reason", sa.Text(), nullable=True))
    outbox = sa.table(
        "outbox",
        sa.column("status", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    now = datetime.now(UTC)
    op.execute(
        outbox.update()
        .where(outbox.c.status == "dead")
        .values(status="pending", next_attempt_at=now)
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT UPDATE ({GIVE_UP}) ON outbox TO tafang_supervisor")
        op.execute("GRANT UPDATE (next_attempt_at) ON outbox TO tafang_dispatcher")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"REVOKE UPDATE ({GIVE_UP}) ON outbox FROM tafang_supervisor")
        op.execute("REVOKE UPDATE (next_attempt_at) ON outbox FROM tafang_dispatcher")
    with op.batch_alter_table("outbox", schema=None) as b:
        b.drop_column("give_up_reason")
        b.drop_column("given_up_by")
        b.drop_column("given_up_at")
