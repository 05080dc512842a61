"""History import and assessment (issue 12).

Revision ID: 0007
Revises: 0006
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the issue's work; a no-op until then."""


def downgrade() -> None:
    """Reserved."""
