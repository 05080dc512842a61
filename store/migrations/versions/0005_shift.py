"""Duty roster: officer duty status, shifts, handover acknowledgements (issue 11).

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the issue's work; a no-op until then."""


def downgrade() -> None:
    """Reserved."""
