"""Imports every table so that `Base.metadata` is complete (for Alembic and schema tests)."""

from backend.agenda.models import ReminderDismissal
from backend.auth.models import (
    AuthFlow,
    AuthorizationCode,
    AuthSession,
    OAuthClient,
    RecoveryCode,
    RefreshToken,
    SigningKey,
    ThrottleCounter,
    TokenRevocation,
    TotpFactor,
)
from backend.calendar.models import CalendarFeed
from backend.crm.accounts.models import Account
from backend.crm.activities.models import Activity
from backend.crm.cases.models import (
    Case,
    CaseAssignmentRule,
    CaseCounter,
    Queue,
    QueueMember,
    SlaPolicy,
)
from backend.crm.cases.selfservice_models import CaseReply, CaseStatusLink, CaseSurvey
from backend.crm.contacts.models import Contact
from backend.crm.leads.models import Lead
from backend.crm.opportunities.models import Opportunity
from backend.crm.orders.models import Order, OrderLine
from backend.crm.pipelines.models import Pipeline, PipelineStage, StageEntry
from backend.crm.products.models import PriceBook, PriceBookEntry, Product
from backend.crm.quotes.models import Quote, QuoteLine
from backend.custom_fields.models import CustomField
from backend.db.base import Base
from backend.exports.models import BulkReadUsage, Export, ExportRules
from backend.history.changes import RecordChange
from backend.history.events import SecurityEvent
from backend.history.seals import AuditSeal
from backend.idempotency.models import IdempotencyKey
from backend.imports.models import Import
from backend.knowledge.models import Article, ArticleVersion, CallScript, ScriptRun
from backend.lookup.models import PhoneNumber
from backend.persisted_queries.models import PersistedQuery
from backend.policy.models import Role, RoleRule, RoleScope, Team, TeamMember, UserRole
from backend.sync.models import SyncDevice, SyncOutcome
from backend.tenants.models import Tenant, User

__all__ = [
    "Account",
    "Activity",
    "Article",
    "ArticleVersion",
    "AuditSeal",
    "AuthFlow",
    "AuthSession",
    "AuthorizationCode",
    "Base",
    "BulkReadUsage",
    "CalendarFeed",
    "CallScript",
    "Case",
    "CaseAssignmentRule",
    "CaseCounter",
    "CaseReply",
    "CaseStatusLink",
    "CaseSurvey",
    "Contact",
    "CustomField",
    "Export",
    "ExportRules",
    "IdempotencyKey",
    "Import",
    "Lead",
    "OAuthClient",
    "Opportunity",
    "Order",
    "OrderLine",
    "PersistedQuery",
    "PhoneNumber",
    "Pipeline",
    "PipelineStage",
    "PriceBook",
    "PriceBookEntry",
    "Product",
    "Queue",
    "QueueMember",
    "Quote",
    "QuoteLine",
    "RecordChange",
    "RecoveryCode",
    "RefreshToken",
    "ReminderDismissal",
    "Role",
    "RoleRule",
    "RoleScope",
    "ScriptRun",
    "SecurityEvent",
    "SigningKey",
    "SlaPolicy",
    "StageEntry",
    "SyncDevice",
    "SyncOutcome",
    "Team",
    "TeamMember",
    "Tenant",
    "ThrottleCounter",
    "TokenRevocation",
    "TotpFactor",
    "User",
    "UserRole",
]

# Tables that carry tenant_id and are isolated by row-level security (ENABLE + FORCE).
TENANT_TABLES = (
    "users",
    "refresh_tokens",
    "accounts",
    "contacts",
    "opportunities",
    "activities",
    "pipelines",
    "pipeline_stages",
    "opportunity_stages",
    "leads",
    # Products, price books, quotes and orders (backend/crm/products, quotes, orders).
    "products",
    "price_books",
    "price_book_entries",
    "quotes",
    "quote_lines",
    "orders",
    "order_lines",
    # The service side (backend/crm/cases): cases and their routing and SLA set-up.
    "cases",
    "case_counters",
    "queues",
    "queue_members",
    "case_assignment_rules",
    "sla_policies",
    # Web self-service and satisfaction: status links, case replies, surveys.
    "case_status_links",
    "case_replies",
    "case_surveys",
    "custom_fields",
    "phone_numbers",
    "calendar_feeds",
    "reminder_dismissals",
    "security_events",
    "record_history",
    "audit_seals",
    # Sign-in (backend/auth): devices, OAuth apps and codes, MFA, flows in progress.
    "oauth_clients",
    "auth_sessions",
    "authorization_codes",
    "auth_flows",
    "mfa_totp",
    "mfa_recovery_codes",
    # Access policy (backend/policy): roles, their rules and scopes, assignments, teams.
    "roles",
    "role_rules",
    "role_scopes",
    "user_roles",
    "teams",
    "team_members",
    # Mobile sync (backend/sync, backend/idempotency): devices, push outcomes, retried POSTs.
    "sync_devices",
    "sync_outcomes",
    "idempotency_keys",
    # Exports (backend/exports): requests, rules, the bulk-read budget.
    "exports",
    "export_rules",
    "bulk_read_usage",
    # CSV imports (backend/imports): each import's options, progress and report.
    "imports",
    # GraphQL documents registered by hash (backend/persisted_queries).
    "persisted_queries",
    # Knowledge base (backend/knowledge): articles, their versions, call scripts and runs.
    "kb_articles",
    "kb_article_versions",
    "call_scripts",
    "script_runs",
)
