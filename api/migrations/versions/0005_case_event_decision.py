"""case_events: each event's place in its decision

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:00:00

`cityloop up` on the embedded broker, whose topics live in memory, puts the read model's case
events back on the fresh broker before the worker starts (api/restore.py). Readers of the topic
take a decision whole or not at all by its `decision: i/n` header, so the read model keeps it.
Events projected before this column existed have none: each goes back as a decision of its own,
which every reader takes whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_column("decision")
