"""The cluster: call ownership and plans, instances, shared outbox claims, the referral pool.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as calls:
        calls.add_column(sa.Column("owner_id", sa.String(), nullable=True))
        calls.add_column(sa.Column("owner_epoch", sa.Integer(), nullable=False, server_default="0"))
        calls.add_column(sa.Column("plan", sa.String(), nullable=True))
        calls.create_index("ix_calls_owner_id", ["owner_id"])
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("host", sa.String(), nullable=False, server_default=""))
        outbox.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        outbox.add_column(sa.Column("claim_until", sa.Float(), nullable=True))
        outbox.create_index("ix_outbox_host", ["host"])
    op.create_table(
        "outbox_hosts",
        sa.Column("host", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("internal_url", sa.String(), nullable=False),
        sa.Column("callback_url", sa.String(), nullable=False),
        sa.Column("clustered", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.create_index("ix_instances_lease_until", "instances", ["lease_until"])
    op.create_table(
        "tracking_numbers",
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("referral_id", sa.BigInteger(), nullable=True),
        sa.Column("assigned_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # the pending posts' customer hosts (the per-customer bound of the shared outbox)
    conn = op.get_bind()
    pending = conn.execute(
        sa.text("SELECT tracking_guid, url FROM outbox WHERE delivered_at IS NULL")
    ).all()
    for guid, url in pending:
        conn.execute(
            sa.text("UPDATE outbox SET host = :host WHERE tracking_guid = :guid"),
            {"host": urlsplit(url).netloc, "guid": guid},
        )
    # carry the pool and the id sequence over from the referrals kept so far
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'referral_id', COALESCE(MAX(referral_id), 0) FROM referrals"
    )


def downgrade() -> None:
    for table in ("counters", "tracking_numbers", "instances", "outbox_hosts"):
        op.drop_table(table)
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_index("ix_outbox_host")
        for column in ("claim_until", "claimed_by", "host"):
            outbox.drop_column(column)
    with op.batch_alter_table("calls") as calls:
        calls.drop_index("ix_calls_owner_id")
        for column in ("plan", "owner_epoch", "owner_id"):
            calls.drop_column(column)
