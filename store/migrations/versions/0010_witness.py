"""The record: keyed chain and witness anchors (issue 13).

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the issue's work; a no-op until then."""


def downgrade() -> None:
    """Reserved."""
