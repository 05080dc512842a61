"""Outbox: retry until delivered or given up (issue 13).

Revision ID: 0009
Revises: 0008
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the issue's work; a no-op until then."""


def downgrade() -> None:
    """Reserved."""
