"""Index open cases by assignee: an officer's status is derived from their open cases.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN = "status NOT IN ('closed', 'void', 'merged')"


def upgrade() -> None:
    op.create_index(
        "ix_cases_open_assignee",
        "cases",
        ["assignee"],
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_open_assignee", table_name="cases")
