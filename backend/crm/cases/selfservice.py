"""Web self-service cases, unauthenticated: submit a case to a tenant named by its slug, then
follow it through the secret status link (its status and public replies) and reply.

A web case is written as the server ("system" channel, no actor in its history), through the
case service's own steps: the tenant's next number, routing, SLA due times, history and write
hooks. Its owner is the agent routing chose, else the tenant's first admin. The submitter's
email links the case to a contact with that email, if there is one; the answer is the same
either way. Text is stored as sent and returned as JSON strings, never rendered as HTML."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.throttle import Key
from backend.crm.cases import public_access as access
from backend.crm.cases.models import Case
from backend.crm.cases.selfservice_models import CaseReply, CaseStatusLink
from backend.crm.cases.service import CASE, cases
from backend.crm.cases.sla import system_context
from backend.crm.contacts.models import Contact
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.history.changes import record_created
from backend.policy.builtin import TENANT_ADMIN
from backend.policy.models import Role, UserRole
from backend.records.fields import FieldSpec, validate_changes
from backend.records.spec import EntitySpec
from backend.tenants.models import User

_cases = table_of(Case)
_links = table_of(CaseStatusLink)
_replies = table_of(CaseReply)
_contacts = table_of(Contact)
_users = table_of(User)
_roles = table_of(Role)
_user_roles = table_of(UserRole)

MAX_BODY_BYTES = 16 * 1024
SUBMISSION = EntitySpec.field_map(
    FieldSpec("name", max_length=200, required=True),
    FieldSpec("email", kind="email", max_length=254, required=True),
    FieldSpec("subject", max_length=200, required=True),
    FieldSpec("description", max_length=10_000, multiline=True, required=True),
)
REPLY = EntitySpec.field_map(FieldSpec("body", max_length=10_000, multiline=True, required=True))


def status_url(slug: str, token: str) -> str:
    return f"/public/{slug}/cases/status/{token}"


def _submit_keys(slug: str, source_ip: str | None) -> list[Key]:
    return [
        access.source_key("public_cases", source_ip, access.SUBMIT_PER_SOURCE),
        Key.of("public_cases_tenant", slug.strip().lower(), access.SUBMIT_PER_TENANT),
    ]


async def _owner(conn: AsyncConnection, tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant's first active admin: a web case needs an owner and has no creator."""
    stmt = (
        select(_users.c.id)
        .join(
            _user_roles,
            (_user_roles.c.tenant_id == _users.c.tenant_id)
            & (_user_roles.c.user_id == _users.c.id),
        )
        .join(
            _roles,
            (_roles.c.tenant_id == _user_roles.c.tenant_id)
            & (_roles.c.id == _user_roles.c.role_id),
        )
        .where(
            _users.c.tenant_id == tenant_id,
            _users.c.active.is_(True),
            _roles.c.builtin.is_(True),
            _roles.c.name == TENANT_ADMIN,
        )
        .order_by(_users.c.created_at, _users.c.id)
        .limit(1)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def _contact_with(conn: AsyncConnection, tenant_id: uuid.UUID, email: str) -> Any:
    stmt = (
        select(_contacts.c.id, _contacts.c.account_id)
        .where(_contacts.c.tenant_id == tenant_id, func.lower(_contacts.c.email) == email.lower())
        .order_by(_contacts.c.created_at, _contacts.c.id)
        .limit(1)
    )
    return (await conn.execute(stmt)).first()


async def submit_case(
    db: Database, slug: str, data: dict[str, Any], source_ip: str | None
) -> dict[str, str]:
    """429 (counted per source and per tenant) before anything else, then 404 for an unknown
    slug, 422 for a bad submission; nothing is written unless the whole case is."""
    await access.throttle(db, _submit_keys(slug, source_ip))
    tenant_id = await access.tenant_of(db, slug)
    sent = validate_changes(SUBMISSION, data, creating=True)
    ctx = system_context(db, tenant_id)
    token, hashed = access.new_token()
    async with ctx.session.transaction() as conn:
        values: dict[str, Any] = validate_changes(
            CASE.fields,
            {
                "subject": sent["subject"],
                "description": sent["description"],
                "channel": "web",
                "status": "new",
            },
            creating=True,
        )
        contact = await _contact_with(conn, tenant_id, sent["email"])
        if contact is not None:
            values.update(contact_id=contact.id, account_id=contact.account_id)
        values.update(tenant_id=tenant_id, id=uuid7(), custom={})
        for prepare in cases.prepare:  # number, routing, SLA due times
            await prepare(conn, ctx, None, values)
        values["owner_id"] = values.get("assignee_id") or await _owner(conn, tenant_id)
        columns = [c for c in _cases.c if c.name != "tenant_id"]
        row = dict(
            (await conn.execute(insert(_cases).values(values).returning(*columns))).one()._mapping
        )
        await record_created(conn, ctx, CASE.name, row)
        for hook in cases.hooks:
            await hook(conn, ctx, CASE, None, row)
        await conn.execute(
            insert(_links).values(
                tenant_id=tenant_id,
                id=uuid7(),
                case_id=row["id"],
                token_hash=hashed,
                submitter_name=sent["name"],
                submitter_email=sent["email"],
            )
        )
    return {"case_number": row["number"], "status_url": status_url(slug, token)}


async def _linked_case(conn: AsyncConnection, tenant_id: uuid.UUID, token: str) -> Any:
    if not access.well_formed(token):
        raise access.not_found()
    stmt = (
        select(_cases.c.id, _cases.c.number, _cases.c.subject, _cases.c.status, _cases.c.created_at)
        .join(
            _links, (_links.c.tenant_id == _cases.c.tenant_id) & (_links.c.case_id == _cases.c.id)
        )
        .where(_links.c.tenant_id == tenant_id, _links.c.token_hash == access.token_hash(token))
    )
    case = (await conn.execute(stmt)).first()
    if case is None:
        raise access.not_found()
    return case


def _link_keys(source_ip: str | None) -> list[Key]:
    return [access.source_key("public_case_links", source_ip, access.LINK_PER_SOURCE)]


async def case_status(db: Database, slug: str, token: str, source_ip: str | None) -> dict[str, Any]:
    """The case of a status link, with its public replies (oldest first); nothing else."""
    await access.throttle(db, _link_keys(source_ip))
    tenant_id = await access.tenant_of(db, slug)
    ctx = system_context(db, tenant_id)
    async with ctx.session.transaction() as conn:
        case = await _linked_case(conn, tenant_id, token)
        stmt = (
            select(_replies.c.author_kind, _replies.c.body, _replies.c.created_at)
            .where(
                _replies.c.tenant_id == tenant_id,
                _replies.c.case_id == case.id,
                _replies.c.public.is_(True),
            )
            .order_by(_replies.c.created_at, _replies.c.id)
        )
        replies = [
            {"from": r.author_kind, "body": r.body, "created_at": r.created_at}
            for r in await conn.execute(stmt)
        ]
    return {
        "case_number": case.number,
        "subject": case.subject,
        "status": case.status,
        "created_at": case.created_at,
        "replies": replies,
    }


async def customer_reply(
    db: Database, slug: str, token: str, data: dict[str, Any], source_ip: str | None
) -> dict[str, Any]:
    await access.throttle(db, _link_keys(source_ip))
    tenant_id = await access.tenant_of(db, slug)
    ctx = system_context(db, tenant_id)
    async with ctx.session.transaction() as conn:
        case = await _linked_case(conn, tenant_id, token)
        body = validate_changes(REPLY, data, creating=True)["body"]
        stmt = (
            insert(_replies)
            .values(
                tenant_id=tenant_id,
                id=uuid7(),
                case_id=case.id,
                author_kind="customer",
                body=body,
                public=True,
            )
            .returning(_replies.c.created_at)
        )
        created_at = (await conn.execute(stmt)).scalar_one()
    return {"from": "customer", "body": body, "created_at": created_at}
