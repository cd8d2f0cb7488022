"""A link crawl's frontier: the URLs each link-following stage of an execution was given or found.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "factflow_frontier",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(40), sa.ForeignKey("factflow_executions.id", name="fk_factflow_frontier_execution"), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("parent_lineage_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("execution_id", "route", "stage", "key", name="uq_factflow_frontier_key"),
    )
    op.create_index("ix_factflow_frontier_order", "factflow_frontier", ["execution_id", "route", "stage", "seq"])


def downgrade() -> None:
    op.drop_index("ix_factflow_frontier_order", "factflow_frontier")
    op.drop_table("factflow_frontier")
