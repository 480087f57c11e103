"""Security events: the append-only log of who signed in, was refused, changed access, exported.

Every event carries its tenant. The catalogue is fixed: a new kind of event is added here, never
invented at a call site. The app role may only INSERT and SELECT this table (grants + trigger).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, func, insert, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.history import pending


class EventType(enum.StrEnum):
    SIGN_IN = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    SIGN_IN_THROTTLED = "auth.sign_in_throttled"
    MFA_CHALLENGED = "auth.mfa_challenged"
    MFA_FAILED = "auth.mfa_failed"
    MFA_ENROLLED = "auth.mfa_enrolled"
    MFA_REMOVED = "auth.mfa_removed"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REFRESHED = "token.refreshed"
    TOKEN_REVOKED = "token.revoked"
    TOKEN_REUSE_DETECTED = "token.reuse_detected"
    SESSION_REVOKED = "session.revoked"
    CLIENT_CREATED = "client.created"
    CLIENT_UPDATED = "client.updated"
    CLIENT_DELETED = "client.deleted"
    CLIENT_SECRET_ROTATED = "client.secret_rotated"
    CONSENT_GRANTED = "oauth.consent_granted"
    CODE_REPLAYED = "oauth.code_replayed"
    CONSENT_DENIED = "oauth.consent_denied"
    CLIENT_AUTH_FAILED = "oauth.client_auth_failed"
    MFA_RECOVERY_CODES_ISSUED = "auth.mfa_recovery_codes_issued"
    TENANT_SECURITY_CHANGED = "tenant.security_changed"
    KEY_ROTATED = "keys.rotated"
    USER_CREATED = "user.created"
    USER_ACTIVATED = "user.activated"
    USER_DEACTIVATED = "user.deactivated"
    ROLE_CREATED = "policy.role_created"
    ROLE_UPDATED = "policy.role_updated"
    ROLE_DELETED = "policy.role_deleted"
    PERMISSION_GRANTED = "policy.permission_granted"
    PERMISSION_REVOKED = "policy.permission_revoked"
    ROLE_ASSIGNED = "policy.role_assigned"
    ROLE_UNASSIGNED = "policy.role_unassigned"
    TEAM_CHANGED = "policy.team_changed"
    CUSTOM_FIELD_CREATED = "policy.custom_field_created"
    CUSTOM_FIELD_UPDATED = "policy.custom_field_updated"
    CUSTOM_FIELD_DELETED = "policy.custom_field_deleted"
    ACCESS_DENIED = "access.denied"
    EXPORT_REQUESTED = "export.requested"
    EXPORT_BLOCKED = "export.blocked"
    EXPORT_APPROVED = "export.approved"
    EXPORT_DENIED = "export.denied"
    EXPORT_DOWNLOADED = "export.downloaded"
    TENANT_SETTINGS_CHANGED = "tenant.settings_changed"
    CALENDAR_FEED_ISSUED = "calendar.feed_issued"
    CALENDAR_FEED_REVOKED = "calendar.feed_revoked"
    BULK_READ_THROTTLED = "export.bulk_read_throttled"
    EXPORT_PENDING = "export.pending"
    EXPORT_RULES_CHANGED = "export.rules_changed"
    HISTORY_READ = "history.read"
    BACKUP_CREATED = "backup.created"
    BACKUP_RESTORED = "backup.restored"
    BACKUP_FAILED = "backup.failed"
    BACKUP_VERIFIED = "backup.verified"
    HISTORY_ERASED = "history.erased"
    AUDIT_RETENTION_CHANGED = "audit.retention_changed"
    AUDIT_PRUNED = "audit.pruned"
    IMPORT_STARTED = "import.started"
    IMPORT_FINISHED = "import.finished"
    # The service side: security-neutral, kept with the audit trail (who escalated what, when).
    CASE_ESCALATED = "case.escalated"
    CASE_SLA_BREACHED = "case.sla_breached"
    # A survey answered with a low score: an alert for the agent's team lead.
    CASE_LOW_SATISFACTION = "case.low_satisfaction"


class SecurityEvent(Base):
    __tablename__ = "security_events"
    __table_args__ = (
        Index(None, "tenant_id", "occurred_at"),
        Index(None, "tenant_id", "type"),
        Index(None, "tenant_id", "txid"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # success / failure / denied
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    # The writing transaction's id, for the audit sealer (see backend/history/changes.py).
    txid: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("(pg_current_xact_id()::text)::bigint")
    )


_events = table_of(SecurityEvent)


async def record_event(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    event_type: EventType,
    *,
    outcome: str = "success",
    actor_user_id: uuid.UUID | None = None,
    actor_client_id: uuid.UUID | None = None,
    subject_user_id: uuid.UUID | None = None,
    request_id: str | None = None,
    channel: str | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write an event in the caller's transaction: it commits or rolls back with the change."""
    pending.mark(tenant_id)
    await conn.execute(
        insert(_events).values(
            tenant_id=tenant_id,
            id=uuid7(),
            type=str(event_type),
            outcome=outcome,
            actor_user_id=actor_user_id,
            actor_client_id=actor_client_id,
            subject_user_id=subject_user_id,
            request_id=request_id,
            channel=channel,
            source_ip=source_ip,
            details=details or {},
        )
    )


async def record_event_now(
    db: Database, tenant_id: uuid.UUID, event_type: EventType, **fields: Any
) -> None:
    """Write an event in its own transaction: for refusals, whose own work is rolled back."""
    async with db.tenant_transaction(tenant_id) as conn:
        await record_event(conn, tenant_id, event_type, **fields)
