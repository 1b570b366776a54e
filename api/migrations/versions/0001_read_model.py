"""read model: cases, timeline, reports, departments, commands

Revision ID: 0001
Revises: -
Create Date: 2026-11-23 23:17:33.056954
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_departments",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "department_id"),
    )
    with op.batch_alter_table("case_departments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_departments_department_id"), ["department_id"], unique=False
        )

    op.create_table(
        "case_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("case_id", "version", name="uq_case_version"),
        sa.UniqueConstraint("event_id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)

    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=60), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=4), nullable=True),
        sa.Column("loop", sa.String(length=10), nullable=True),
        sa.Column("handling_area", sa.String(length=20), nullable=True),
        sa.Column("lead_department", sa.String(length=80), nullable=True),
        sa.Column("coordinating_centre", sa.String(length=80), nullable=True),
        sa.Column("correlation_key", sa.String(length=120), nullable=False),
        sa.Column("area_codes", sa.JSON(), nullable=False),
        sa.Column("primary_area", sa.String(length=20), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("opened_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accept_deadline", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolve_deadline", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("accepted_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accept_missed", sa.Boolean(), nullable=False),
        sa.Column("resolve_missed", sa.Boolean(), nullable=False),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("reopens", sa.Integer(), nullable=False),
        sa.Column("topology_version", sa.String(length=80), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_category_code"), ["category_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_handling_area"), ["handling_area"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cases_lead_department"), ["lead_department"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cases_loop"), ["loop"], unique=False)
        batch_op.create_index("ix_cases_opened", ["opened_at", "case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_primary_area"), ["primary_area"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)

    op.create_table(
        "commands",
        sa.Column("command_id", sa.String(length=80), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("command_type", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("issued_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", api.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("command_id"),
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commands_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_commands_case_id"), ["case_id"], unique=False)

    op.create_table(
        "reports",
        sa.Column("idempotency_key", sa.String(length=450), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("category_code", sa.String(length=60), nullable=False),
        sa.Column("occurred_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", api.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", "case_id"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_source"), ["source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_source"))
        batch_op.drop_index(batch_op.f("ix_reports_case_id"))

    op.drop_table("reports")
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commands_case_id"))
        batch_op.drop_index(batch_op.f("ix_commands_actor"))

    op.drop_table("commands")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_status"))
        batch_op.drop_index(batch_op.f("ix_cases_primary_area"))
        batch_op.drop_index("ix_cases_opened")
        batch_op.drop_index(batch_op.f("ix_cases_loop"))
        batch_op.drop_index(batch_op.f("ix_cases_lead_department"))
        batch_op.drop_index(batch_op.f("ix_cases_handling_area"))
        batch_op.drop_index(batch_op.f("ix_cases_category_code"))

    op.drop_table("cases")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_case_id"))

    op.drop_table("case_events")
    with op.batch_alter_table("case_departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_departments_department_id"))

    op.drop_table("case_departments")
