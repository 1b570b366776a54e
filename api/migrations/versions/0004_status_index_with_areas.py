"""cases: the status index carries the areas a duty officer's scope tests

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:45:00

A duty officer sees the cases handled in its subtree or first reported there: two prefix tests
(handling area, primary area), which no one index orders by time. A page of one status read
the status's cases newest first and looked each one up in the table to test its areas, about
twenty for each one shown (2.1 ms on SQLite at 100,000 cases). With both areas in the status
index the tests are made on the index and only the cases shown are looked up (0.3 ms). It
replaces the status index, whose leading columns it keeps.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_status_opened_areas",
            ["status", "opened_at", "case_id", "handling_area", "primary_area"],
            unique=False,
        )
        batch_op.drop_index("ix_cases_status_opened")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_status_opened", ["status", "opened_at", "case_id"], unique=False
        )
        batch_op.drop_index("ix_cases_status_opened_areas")
