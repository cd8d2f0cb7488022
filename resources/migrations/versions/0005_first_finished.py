"""When an execution first ended: its duration is its first run's span, not stretched by the
replays and resumes that came later (those move `finished_at`, the last activity).

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("factflow_executions") as batch:
        batch.add_column(sa.Column("first_finished_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE factflow_executions SET first_finished_at = finished_at")


def downgrade() -> None:
    with op.batch_alter_table("factflow_executions") as batch:
        batch.drop_column("first_finished_at")
