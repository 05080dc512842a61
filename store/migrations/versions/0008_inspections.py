"""Enterprises, joint inspections, risk points, partner items (issue 12).

- `enterprises`: the register, one row per unified social credit code.
- `inspection_plans`, `inspection_items`, `inspection_merges`: joint inspection plans, their
  checklist items with results, and merge proposals with their decision.
- `risk_points`: risk points by grid and class, with their next planned check.
- `partner_items`: items (bikes moved) a partner team handled on a case.
On PostgreSQL the tafang_* group roles read them all; dispatchers, supervisors, checkers and
the daemon write them (the daemon advances risk points when it files their checks).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = (
    "enterprises",
    "inspection_plans",
    "inspection_items",
    "inspection_merges",
    "risk_points",
    "partner_items",
)
GROUPS = "tafang_viewer, tafang_dispatcher, tafang_supervisor, tafang_checker, tafang_admin"
WRITERS = "tafang_dispatcher, tafang_supervisor, tafang_checker, tafang_daemon"


def _s(n: int | None = None) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=n) if n else sa.Text()


def _t() -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "enterprises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", _s(18), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("grid", _s(32), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("risk_grade", _s(1), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("updated_at", _t(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credit_code"),
    )
    op.create_table(
        "inspection_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("departments", sa.Text(), nullable=False),
        sa.Column("officers", sa.Text(), nullable=False),
        sa.Column("window_from", _t(), nullable=False),
        sa.Column("window_to", _t(), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("visited_at", _t(), nullable=True),
        sa.Column("created_at", _t(), nullable=False),
        sa.Column("created_by", _s(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspection_plans_enterprise", "inspection_plans", ["enterprise_id"])
    op.create_table(
        "inspection_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("department", _s(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("result", _s(8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("checked_by", _s(32), nullable=False),
        sa.Column("checked_at", _t(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspection_items_plan", "inspection_items", ["plan_id"])
    op.create_table(
        "inspection_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("proposed_at", _t(), nullable=False),
        sa.Column("decided_at", _t(), nullable=True),
        sa.Column("decided_by", _s(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "other_id", name="uq_inspection_merge"),
    )
    op.create_table(
        "risk_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _s(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("grid", _s(32), nullable=False),
        sa.Column("risk_class", _s(16), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("next_check_at", _t(), nullable=True),
        sa.Column("last_case_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _t(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_risk_points_grid", "risk_points", ["grid"])
    op.create_table(
        "partner_items",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("partner", _s(32), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("at", _t(), nullable=False),
        sa.Column("by", _s(32), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        names = ", ".join(TABLES)
        op.execute(f"GRANT SELECT ON {names} TO {GROUPS}, tafang_daemon")
        op.execute(f"GRANT INSERT, UPDATE ON {names} TO {WRITERS}")
        op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {WRITERS}")


def downgrade() -> None:
    op.drop_table("partner_items")
    op.drop_index("ix_risk_points_grid", table_name="risk_points")
    op.drop_table("risk_points")
    op.drop_table("inspection_merges")
    op.drop_index("ix_inspection_items_plan", table_name="inspection_items")
    op.drop_table("inspection_items")
    op.drop_index("ix_inspection_plans_enterprise", table_name="inspection_plans")
    op.drop_table("inspection_plans")
    op.drop_table("enterprises")
