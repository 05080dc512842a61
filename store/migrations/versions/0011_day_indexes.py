"""Cases by closing and by handling time: `ix_cases_closed`, `ix_cases_handled`.

The header's and the wall's "closed today" counted with `received_at >= midnight OR
closed_at >= midnight`, which no index serves: a scan of every case, 0.3 s on a store of a
million, eleven times every 30 s in each console (the day's flow and the hours' sparkline);
"handled today by each partner" (`handled_at >= midnight`) scanned them too (0.24 s). With
these indexes each count reads only today's entries.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


INDEXES = {"ix_cases_closed": "closed_at", "ix_cases_handled": "handled_at"}


def upgrade() -> None:
    """Re-runnable: a store set back to an older revision keeps the indexes it has."""
    have = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("cases")}
    for name, column in INDEXES.items():
        if name not in have:
            op.create_index(name, "cases", [column])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="cases")
