"""Webhook deliveries: each notification an execution sent (or tried to), with its attempts.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "factflow_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("execution_id", sa.String(40), sa.ForeignKey("factflow_executions.id", name="fk_factflow_deliveries_execution"), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("response_status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("signed", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_factflow_deliveries_execution", "factflow_deliveries", ["execution_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_factflow_deliveries_execution", "factflow_deliveries")
    op.drop_table("factflow_deliveries")
