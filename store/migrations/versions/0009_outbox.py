"""Outbox: retry until delivered or given up (issue 13).

An escalation notice is no longer dropped after a number of attempts: it stays `pending`
(retried at a capped interval) until it is delivered or a person gives up on it. This adds who
gave up, when and why (`given_up_at`, `given_up_by`, `give_up_reason`; status `given_up`), and
puts rows an earlier version left `dead` back in the queue, due at once. On PostgreSQL a
supervisor may give up on a notice or retry it (UPDATE on outbox; the record entry goes with
it).

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
        op.execute("GRANT UPDATE ON outbox TO tafang_supervisor")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("REVOKE UPDATE ON outbox FROM tafang_supervisor")
    with op.batch_alter_table("outbox", schema=None) as b:
        b.drop_column("give_up_reason")
        b.drop_column("given_up_by")
        b.drop_column("given_up_at")
