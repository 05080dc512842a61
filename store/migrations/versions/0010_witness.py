"""The record: keyed chain (issue 13).

Adds to `audit_head` the binding of the record key: `keyed_from` (the first entry chained
with HMAC-SHA256 under the key; entries before it stay plain SHA-256 and verify as such),
`key_id` (the key's keyed fingerprint, never the key) and `key_mark` (the key's MAC of
`keyed_from`, so that point cannot be moved). All NULL: a plain chain, as before this
revision; the first write made with a key fills them (store/record.py `bind_key`). The
record's rows are unchanged, so migration 0004's triggers on `audit` stay as they are;
`audit_head` keeps its grants (UPDATE for the writing roles).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as t:
        t.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))
        t.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        t.add_column(sa.Column("key_mark", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drops the binding: a keyed record then no longer verifies without being told where
    its keyed part starts, so downgrade only a store that was never keyed."""
    with op.batch_alter_table("audit_head") as t:
        t.drop_column("key_mark")
        t.drop_column("key_id")
        t.drop_column("keyed_from")
