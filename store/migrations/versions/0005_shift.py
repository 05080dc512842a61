"""Duty roster: officer duty status, handover notes and acknowledgements (issue 11).

- `officers.duty` (on_duty | off_duty | on_break) and `officers.duty_since`: whether an
  officer may be sent at all, apart from `status`, which the cases in hand decide. An officer
  the old schema had as `status = 'off_duty'` becomes duty off_duty, status available.
- `handover_notes`: notes for the next shift, by the handover (the incoming shift) they go to.
- `handover_acks`: the incoming 带班领导's acknowledgement of a handover, once per handover.
On PostgreSQL the tafang_* group roles read them; dispatchers and supervisors write notes,
supervisors acknowledge (the store's rule; the grant lets any worker insert).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GROUPS = "tafang_viewer, tafang_dispatcher, tafang_supervisor, tafang_checker, tafang_admin"
WRITERS = "tafang_dispatcher, tafang_supervisor, tafang_checker"


def _s(n: int) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t() -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    """Idempotent: a store whose recorded revision is behind its schema migrates again."""
    have = sa.inspect(op.get_bind())
    columns = {c["name"] for c in have.get_columns("officers")}
    if "duty" not in columns:
        op.add_column(
            "officers", sa.Column("duty", _s(16), nullable=False, server_default="on_duty")
        )
    if "duty_since" not in columns:
        op.add_column("officers", sa.Column("duty_since", _t(), nullable=True))
    op.execute(
        "UPDATE officers SET duty = 'off_duty', duty_since = status_since, "
        "status = 'available' WHERE status = 'off_duty'"
    )
    if not have.has_table("handover_notes"):
        op.create_table(
            "handover_notes",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("handover", _s(40), nullable=False),
            sa.Column("at", _t(), nullable=False),
            sa.Column("by", _s(32), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_handover_notes_handover", "handover_notes", ["handover"])
    if not have.has_table("handover_acks"):
        op.create_table(
            "handover_acks",
            sa.Column("handover", _s(40), nullable=False),
            sa.Column("at", _t(), nullable=False),
            sa.Column("by", _s(32), nullable=False),
            sa.Column("leader", _s(32), nullable=False),
            sa.PrimaryKeyConstraint("handover"),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON handover_notes, handover_acks TO {GROUPS}, tafang_daemon")
        op.execute(f"GRANT INSERT ON handover_notes, handover_acks TO {WRITERS}")
        op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {WRITERS}")


def downgrade() -> None:
    op.drop_table("handover_acks")
    op.drop_index("ix_handover_notes_handover", table_name="handover_notes")
    op.drop_table("handover_notes")
    op.execute("UPDATE officers SET status = 'off_duty' WHERE duty <> 'on_duty'")
    with op.batch_alter_table("officers") as batch:
        batch.drop_column("duty_since")
        batch.drop_column("duty")
