"""Foreign keys where rows reference each other.

A lineage row, a replay, a runner or a progress row names an execution that exists; a lineage row's
parent is a lineage row (of the same execution, or of the parent of a replay's child); an
execution's parent is an execution and its config a stored config. Deleting an execution (or
leaving a row behind) in the wrong order is then refused by the database instead of leaving rows
that point at nothing. On SQLite the tables are rebuilt to carry the keys (Alembic's batch mode).

Revision ID: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: table -> [(constraint name, columns, referenced table, referenced columns)]
FOREIGN_KEYS = {
    "factflow_executions": [
        ("fk_factflow_executions_parent", ["parent_id"], "factflow_executions", ["id"]),
        ("fk_factflow_executions_config", ["config_hash"], "factflow_configs", ["config_hash"]),
    ],
    "factflow_lineage": [
        ("fk_factflow_lineage_execution", ["execution_id"], "factflow_executions", ["id"]),
        ("fk_factflow_lineage_parent", ["parent_lineage_id"], "factflow_lineage", ["id"]),
    ],
    "factflow_replays": [
        ("fk_factflow_replays_execution", ["execution_id"], "factflow_executions", ["id"]),
        ("fk_factflow_replays_target", ["target_execution_id"], "factflow_executions", ["id"]),
    ],
    "factflow_runners": [("fk_factflow_runners_execution", ["execution_id"], "factflow_executions", ["id"])],
    "factflow_stage_progress": [("fk_factflow_stage_progress_execution", ["execution_id"], "factflow_executions", ["id"])],
}


def upgrade() -> None:
    for table, keys in FOREIGN_KEYS.items():
        with op.batch_alter_table(table) as batch:
            for name, columns, referenced, referenced_columns in keys:
                batch.create_foreign_key(name, referenced, columns, referenced_columns)


def downgrade() -> None:
    for table, keys in FOREIGN_KEYS.items():
        with op.batch_alter_table(table) as batch:
            for name, _columns, _referenced, _referenced_columns in keys:
                batch.drop_constraint(name, type_="foreignkey")
