"""cases: the handling area's district, so that a page of one district is an index range

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:30:00

An area filter is a prefix of the handling area's code, which no index orders by time: a page
of one status in one district read the status's cases newest first and tested each one's
prefix, about twenty cases read for each one shown (2.0 ms on SQLite at 100,000 cases). Area
codes below the district extend the district's six digits (GB/T 2260 and its township and
village extensions), so the district is the code's first six characters; with it in an index
after the status, the same page reads the rows it shows (0.16 ms).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handling_district", sa.String(length=6), nullable=True))
    op.execute("UPDATE cases SET handling_district = substr(handling_area, 1, 6)")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_status_district_opened",
            ["status", "handling_district", "opened_at", "case_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_cases_district_opened", ["handling_district", "opened_at", "case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_district_opened")
        batch_op.drop_index("ix_cases_status_district_opened")
        batch_op.drop_column("handling_district")
