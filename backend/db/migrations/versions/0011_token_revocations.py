"""Access-token revocation: revoked device sessions and tokens, announced to every server.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.db.rls import grant

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None

CHANNEL = "caravan_revocations"  # backend/auth/revocation.py listens on it


def upgrade() -> None:
    # Global (see backend/auth/models.py TokenRevocation): ids and times, no tenant data.
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column(
            "revoked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_token_revocations"),
    )
    op.create_index("ix_token_revocations_revoked_at", "token_revocations", ["revoked_at"])
    # Each committed row is announced to the listening server processes (NOTIFY is delivered
    # at commit, never for a rolled-back row).
    op.execute(
        f"""
        CREATE FUNCTION announce_token_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.kind || ':' || NEW.subject);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER token_revocations_announce AFTER INSERT ON token_revocations "
        "FOR EACH ROW EXECUTE FUNCTION announce_token_revocation()"
    )
    # A revocation cannot be taken back: rows are never updated (no grant), and only rows a
    # day old (long past any access token they refuse) may be deleted, by anyone.
    op.execute(
        """
        CREATE FUNCTION keep_recent_token_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.revoked_at > now() - interval '1 day' THEN
                RAISE EXCEPTION 'a token revocation younger than a day cannot be deleted'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER token_revocations_keep BEFORE DELETE ON token_revocations "
        "FOR EACH ROW EXECUTE FUNCTION keep_recent_token_revocations()"
    )
    grant("token_revocations", "SELECT, INSERT, DELETE")


def downgrade() -> None:
    op.drop_table("token_revocations")
    op.execute("DROP FUNCTION announce_token_revocation()")
    op.execute("DROP FUNCTION keep_recent_token_revocations()")
