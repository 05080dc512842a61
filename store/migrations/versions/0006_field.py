"""Field API: request ids for idempotency, self-found cases, officer notices (issue 11).

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the issue's work; a no-op until then."""


def downgrade() -> None:
    """Reserved."""
