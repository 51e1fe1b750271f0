"""The schema of the releases before migrations (what ``create_all`` made).

A database created by such a release has these tables but no ``alembic_version``: the store
stamps it with this revision before upgrading (:mod:`store.migrate`).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("nmls", sa.String(), nullable=False),
        sa.Column("five_min_apps", sa.Boolean(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    op.create_table(
        "calls",
        sa.Column("tracking_guid", sa.String(), nullable=False),
        sa.Column("carrier_call_id", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("lead_phone", sa.String(), nullable=False),
        sa.Column("dialled_number", sa.String(), nullable=False),
        sa.Column("referral_id", sa.BigInteger(), nullable=False),
        sa.Column("plantype", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("plan_fingerprint", sa.String(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("agent1_id", sa.BigInteger(), nullable=True),
        sa.Column("message_link", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("tracking_guid"),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_carrier_call_id", "calls", ["carrier_call_id"])
    op.create_index("ix_calls_lead_phone", "calls", ["lead_phone"])
    op.create_table(
        "legs",
        sa.Column("leg_id", sa.String(), nullable=False),
        sa.Column("tracking_guid", sa.String(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("carrier_call_id", sa.String(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("result", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["tracking_guid"], ["calls.tracking_guid"]),
        sa.PrimaryKeyConstraint("leg_id"),
    )
    op.create_index("ix_legs_tracking_guid", "legs", ["tracking_guid"])
    op.create_index("ix_legs_agent_id", "legs", ["agent_id"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_guid", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_call_events_tracking_guid", "call_events", ["tracking_guid"])
    op.create_table(
        "outbox",
        sa.Column("tracking_guid", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("tracking_guid"),
    )
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("tracking_number", sa.String(), nullable=False),
        sa.Column("first_name", sa.String(), nullable=False),
        sa.Column("last_name", sa.String(), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("zip", sa.String(), nullable=False),
        sa.Column("assigned_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_index("ix_referrals_tracking_number", "referrals", ["tracking_number"])
    op.create_index("ix_referrals_expires_at", "referrals", ["expires_at"])


def downgrade() -> None:
    for table in ("referrals", "outbox", "call_events", "legs", "calls", "agents"):
        op.drop_table(table)
