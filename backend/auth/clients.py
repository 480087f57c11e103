"""OAuth clients (apps), registered per tenant by its admins.

- public clients (phone and browser apps) cannot keep a secret: authorization code + PKCE,
  optionally refresh tokens; they authenticate at the token endpoint with their client_id only.
- confidential clients (servers) get a secret, shown once and stored as a SHA-256 (it is 256
  random bits, so a fast hash is enough); they may also use client credentials, acting as a
  service user created for them that holds the role named at registration.

Redirect URIs are matched exactly (no wildcards, no prefix or port leniency): https, http on a
loopback address (native apps, RFC 8252 section 7.3, with a fixed port), or a private-use scheme
in reverse-DNS form (RFC 8252 section 7.1, e.g. `com.example.app:/callback`). No fragments.
No implicit or password grant exists.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.models import AuthSession, OAuthClient
from backend.auth.opaque import parse_client_id, public_client_id
from backend.auth.origin import Origin
from backend.auth.refresh import revoke_session
from backend.context import RequestContext
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.errors import FieldProblem, NotFound, ValidationFailed
from backend.history.events import EventType, record_event
from backend.policy.admin import require_admin
from backend.policy.assignments import assign_roles, set_user_roles
from backend.policy.role_views import list_roles
from backend.policy.scopes import OAUTH_SCOPES
from backend.tenants.models import User

_clients = table_of(OAuthClient)
_users = table_of(User)
_sessions = table_of(AuthSession)

PUBLIC, CONFIDENTIAL = "public", "confidential"
AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
)
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS)
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
_FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"}


@dataclass(frozen=True)
class Client:
    id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    name: str
    client_type: str
    redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: list[str]
    role: str | None
    service_user_id: uuid.UUID | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    secret_hash: str | None = None

    def check_secret(self, secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, _hash_secret(secret))


@dataclass(frozen=True)
class ClientWithSecret:
    client: Client
    client_secret: str | None


@dataclass
class ClientInput:
    name: str
    client_type: str
    redirect_uris: list[str]
    grant_types: list[str]
    allowed_scopes: list[str]
    role: str | None = None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _client(row: Any) -> Client:
    return Client(
        id=row.id,
        tenant_id=row.tenant_id,
        client_id=public_client_id(row.tenant_id, row.id),
        name=row.name,
        client_type=row.client_type,
        redirect_uris=list(row.redirect_uris),
        grant_types=list(row.grant_types),
        allowed_scopes=list(row.allowed_scopes),
        role=row.role,
        service_user_id=row.service_user_id,
        active=row.active,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_hash=row.secret_hash,
    )


# -- validation ----------------------------------------------------------------------------------
def check_redirect_uri(uri: str) -> str | None:
    """Why `uri` cannot be registered, or None when it can."""
    if (
        not uri
        or len(uri) > MAX_URI_LENGTH
        or any(ch.isspace() or not ch.isprintable() for ch in uri)
    ):
        return "must be a URI without spaces, at most 2000 characters"
    if "#" in uri:
        return "must not have a fragment"
    if "*" in uri:
        return "wildcards are not allowed"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return "is not a valid URI"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if host else "needs a host"
    if scheme == "http":
        if host == "localhost":
            return None
        try:
            return (
                None
                if host and ipaddress.ip_address(host).is_loopback
                else "http is allowed for loopback addresses only"
            )
        except ValueError:
            return "http is allowed for loopback addresses only"
    if not scheme or scheme in _FORBIDDEN_SCHEMES:
        return "needs https, a loopback http address, or an app's private-use scheme"
    if "." not in scheme:
        return "a private-use scheme must be in reverse-DNS form, e.g. com.example.app"
    return None


def _validate(spec: ClientInput) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not spec.name.strip() or len(spec.name) > 200:
        problems.append(FieldProblem("name", "invalid_name", "1 to 200 characters"))
    if spec.client_type not in (PUBLIC, CONFIDENTIAL):
        problems.append(FieldProblem("client_type", "invalid_value", "public or confidential"))
    unknown_grants = [g for g in spec.grant_types if g not in GRANT_TYPES]
    if unknown_grants or not spec.grant_types:
        problems.append(
            FieldProblem(
                "grant_types",
                "unsupported_grant_type",
                "one or more of authorization_code, refresh_token, client_credentials",
            )
        )
    if spec.client_type == PUBLIC and CLIENT_CREDENTIALS in spec.grant_types:
        problems.append(
            FieldProblem(
                "grant_types",
                "not_for_public_clients",
                "client_credentials needs a confidential client",
            )
        )
    if REFRESH_TOKEN in spec.grant_types and AUTHORIZATION_CODE not in spec.grant_types:
        problems.append(
            FieldProblem(
                "grant_types", "refresh_needs_code", "refresh_token comes with authorization_code"
            )
        )
    unknown_scopes = [s for s in spec.allowed_scopes if s not in OAUTH_SCOPES]
    if unknown_scopes:
        problems.append(
            FieldProblem("allowed_scopes", "unknown_scope", f"no scope {unknown_scopes[0]!r}")
        )
    if AUTHORIZATION_CODE in spec.grant_types and not spec.redirect_uris:
        problems.append(
            FieldProblem(
                "redirect_uris", "required", "the authorization code flow needs a redirect URI"
            )
        )
    if len(spec.redirect_uris) > MAX_REDIRECT_URIS:
        problems.append(FieldProblem("redirect_uris", "too_many", "at most 10"))
    for uri in spec.redirect_uris:
        reason = check_redirect_uri(uri)
        if reason is not None:
            problems.append(
                FieldProblem("redirect_uris", "invalid_redirect_uri", f"{uri[:100]!r} {reason}")
            )
            break
    if CLIENT_CREDENTIALS in spec.grant_types and not spec.role:
        problems.append(
            FieldProblem("role", "required", "a client-credentials app needs the role it acts as")
        )
    if spec.role is not None and CLIENT_CREDENTIALS not in spec.grant_types:
        problems.append(
            FieldProblem("role", "not_applicable", "only client-credentials apps act as a role")
        )
    return problems


def _details(client: Client, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "client_type": client.client_type,
        "grant_types": client.grant_types,
        "allowed_scopes": client.allowed_scopes,
        "redirect_uris": client.redirect_uris,
        "role": client.role,
        "active": client.active,
        **extra,
    }


async def _event(
    conn: AsyncConnection,
    ctx: RequestContext,
    event: EventType,
    client: Client,
    origin: Origin,
    **extra: Any,
) -> None:
    await record_event(
        conn,
        ctx.tenant_id,
        event,
        actor_user_id=ctx.user_id,
        actor_client_id=ctx.principal.client_id,
        subject_user_id=client.service_user_id,
        request_id=ctx.request_id,
        channel=ctx.channel,
        source_ip=origin.ip,
        details=_details(client, **extra),
    )


# -- admin operations ------------------------------------------------------------------------------
async def create_client(ctx: RequestContext, spec: ClientInput, origin: Origin) -> ClientWithSecret:
    spec.redirect_uris = list(dict.fromkeys(spec.redirect_uris))
    spec.grant_types = list(dict.fromkeys(spec.grant_types))
    spec.allowed_scopes = list(dict.fromkeys(spec.allowed_scopes))
    problems = _validate(spec)
    if problems:
        raise ValidationFailed.of(problems)
    await require_admin(ctx)
    client_id = uuid7()
    secret = _new_secret() if spec.client_type == CONFIDENTIAL else None
    async with ctx.session.transaction() as conn:
        service_user_id = None
        if CLIENT_CREDENTIALS in spec.grant_types:
            service_user_id = uuid7()
            await conn.execute(
                insert(_users).values(
                    tenant_id=ctx.tenant_id,
                    id=service_user_id,
                    email=f"app-{client_id.hex}@apps.caravan.invalid",
                    display_name=f"App: {spec.name.strip()}"[:200],
                    password_hash=None,
                    kind="service",
                )
            )
            assert spec.role is not None
            try:
                await assign_roles(conn, ctx.tenant_id, service_user_id, [spec.role])
            except ValidationFailed as exc:  # an unknown role: name this input's field
                raise ValidationFailed.one("role", exc.code, exc.detail) from None
        row = (
            await conn.execute(
                insert(_clients)
                .values(
                    tenant_id=ctx.tenant_id,
                    id=client_id,
                    name=spec.name.strip(),
                    client_type=spec.client_type,
                    secret_hash=_hash_secret(secret) if secret else None,
                    redirect_uris=spec.redirect_uris,
                    grant_types=spec.grant_types,
                    allowed_scopes=spec.allowed_scopes,
                    role=spec.role,
                    service_user_id=service_user_id,
                )
                .returning(_clients)
            )
        ).one()
        client = _client(row)
        await _event(conn, ctx, EventType.CLIENT_CREATED, client, origin)
    return ClientWithSecret(client, secret)


async def list_clients(ctx: RequestContext) -> list[Client]:
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        rows = (await conn.execute(select(_clients).order_by(_clients.c.created_at))).all()
    return [_client(r) for r in rows]


async def get_client(ctx: RequestContext, client_id: uuid.UUID) -> Client:
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        return await _load(conn, client_id)


async def _load(conn: AsyncConnection, client_id: uuid.UUID, *, lock: bool = False) -> Client:
    stmt = select(_clients).where(_clients.c.id == client_id)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("client not found")
    return _client(row)


async def update_client(
    ctx: RequestContext, client_id: uuid.UUID, changes: dict[str, Any], origin: Origin
) -> Client:
    """Change name, redirect URIs, grant types, allowed scopes, role or active. Narrowing the
    allowed scopes narrows the next token every session of this app gets; deactivating an app
    revokes its sessions."""
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        before = await _load(conn, client_id)
    merged = ClientInput(
        name=changes.get("name", before.name),
        client_type=before.client_type,
        redirect_uris=list(dict.fromkeys(changes.get("redirect_uris", before.redirect_uris))),
        grant_types=list(dict.fromkeys(changes.get("grant_types", before.grant_types))),
        allowed_scopes=list(dict.fromkeys(changes.get("allowed_scopes", before.allowed_scopes))),
        role=changes.get("role", before.role),
    )
    problems = _validate(merged)
    if CLIENT_CREDENTIALS in merged.grant_types and before.service_user_id is None:
        problems.append(
            FieldProblem(
                "grant_types",
                "register_again",
                "client_credentials can only be chosen when the app is registered",
            )
        )
    if problems:
        raise ValidationFailed.of(problems)
    active = bool(changes.get("active", before.active))
    if merged.role != before.role and before.service_user_id is not None and merged.role:
        roles = {r.name: r.id for r in await list_roles(ctx)}
        if merged.role not in roles:
            raise ValidationFailed.one("role", "unknown_role", f"no role {merged.role!r}")
        await set_user_roles(ctx, before.service_user_id, [roles[merged.role]])
    async with ctx.session.transaction() as conn:
        row = (
            await conn.execute(
                update(_clients)
                .where(_clients.c.id == client_id)
                .values(
                    name=merged.name.strip(),
                    redirect_uris=merged.redirect_uris,
                    grant_types=merged.grant_types,
                    allowed_scopes=merged.allowed_scopes,
                    role=merged.role,
                    active=active,
                    version=_clients.c.version + 1,
                    updated_at=func.now(),
                )
                .returning(_clients)
            )
        ).one()
        client = _client(row)
        revoked = 0
        if before.active and not active:
            revoked = await _revoke_sessions(conn, ctx.tenant_id, client_id)
        if before.service_user_id is not None and active != before.active:
            await conn.execute(
                update(_users).where(_users.c.id == before.service_user_id).values(active=active)
            )
        await _event(conn, ctx, EventType.CLIENT_UPDATED, client, origin, sessions_revoked=revoked)
    return client


async def rotate_secret(
    ctx: RequestContext, client_id: uuid.UUID, origin: Origin
) -> ClientWithSecret:
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        before = await _load(conn, client_id, lock=True)
        if before.client_type != CONFIDENTIAL:
            raise ValidationFailed.one(
                "client_type", "public_client", "a public client has no secret"
            )
        secret = _new_secret()
        row = (
            await conn.execute(
                update(_clients)
                .where(_clients.c.id == client_id)
                .values(
                    secret_hash=_hash_secret(secret),
                    version=_clients.c.version + 1,
                    updated_at=func.now(),
                )
                .returning(_clients)
            )
        ).one()
        client = _client(row)
        await _event(conn, ctx, EventType.CLIENT_SECRET_ROTATED, client, origin)
    return ClientWithSecret(client, secret)


async def delete_client(ctx: RequestContext, client_id: uuid.UUID, origin: Origin) -> None:
    """The app, its codes and its sessions go; its service user is deactivated (kept, because
    history names it)."""
    await require_admin(ctx)
    async with ctx.session.transaction() as conn:
        client = await _load(conn, client_id, lock=True)
        revoked = await _revoke_sessions(conn, ctx.tenant_id, client_id)
        if client.service_user_id is not None:
            await conn.execute(
                update(_users).where(_users.c.id == client.service_user_id).values(active=False)
            )
        await conn.execute(_clients.delete().where(_clients.c.id == client_id))
        await _event(conn, ctx, EventType.CLIENT_DELETED, client, origin, sessions_revoked=revoked)


async def _revoke_sessions(
    conn: AsyncConnection, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> int:
    ids = (
        (
            await conn.execute(
                select(_sessions.c.id).where(
                    _sessions.c.client_id == client_id, _sessions.c.revoked_at.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    for session_id in ids:
        await revoke_session(conn, tenant_id, session_id, "client_changed")
    return len(ids)


# -- the authorization server's view -------------------------------------------------------------
async def find_client(db: Database, client_id: str | None) -> Client | None:
    """An active client by its public client_id, or None (malformed, unknown, deactivated)."""
    parsed = parse_client_id(client_id)
    if parsed is None:
        return None
    tenant_id, row_id = parsed
    async with db.tenant_transaction(tenant_id) as conn:
        row = (
            await conn.execute(
                select(_clients).where(
                    _clients.c.tenant_id == tenant_id,
                    _clients.c.id == row_id,
                    _clients.c.active.is_(True),
                )
            )
        ).first()
    return _client(row) if row is not None else None
