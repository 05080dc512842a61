"""History import and assessment (issue 12).

- `case_history`: one row per case brought in by `tafang ingest --history` (its row marks the
  case as imported): who acknowledged, dispatched, arrived, handled and closed it before
  Tafang, and its counts of 回退 / 返工 / 延期 / 督办.
- `ix_cases_received`: cases by receipt time, for period reports and assessment (the existing
  index on `received_at` covers open cases only).
On PostgreSQL the tafang_* group roles read the table; dispatchers and supervisors write it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

GROUPS = "tafang_viewer, tafang_dispatcher, tafang_supervisor, tafang_checker, tafang_admin"
WRITERS = "tafang_dispatcher, tafang_supervisor"


def _s(n: int) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def upgrade() -> None:
    """Re-runnable: a store set back to an older revision keeps what it has."""
    have = sa.inspect(op.get_bind())
    if not have.has_table("case_history"):
        _create_history()
    if "ix_cases_received" not in {i["name"] for i in have.get_indexes("cases")}:
        op.create_index("ix_cases_received", "cases", ["received_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON case_history TO {GROUPS}, tafang_daemon")
        op.execute(f"GRANT INSERT ON case_history TO {WRITERS}")


def _create_history() -> None:
    op.create_table(
        "case_history",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("origin", _s(200), nullable=False),
        sa.Column("imported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        *(
            sa.Column(f"{stage}_by", _s(32), nullable=False)
            for stage in ("acknowledged", "dispatched", "arrived", "handled", "closed")
        ),
        *(
            sa.Column(n, sa.Integer(), nullable=False)
            for n in ("returns", "reworks", "extensions", "supervisions")
        ),
        sa.PrimaryKeyConstraint("case_id"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_received", table_name="cases")
    op.drop_table("case_history")
