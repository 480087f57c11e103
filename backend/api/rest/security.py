"""REST for sign-in security: my MFA, my devices, a tenant admin's controls over users' devices
and the tenant's MFA rule, and OAuth app registration. Parse -> service -> shape."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from backend.api.origin import request_origin
from backend.auth import clients, devices
from backend.auth.clients import Client, ClientInput
from backend.auth.origin import Origin
from backend.context import RequestContext
from backend.runtime import Services

Ctx = NamedDependency[RequestContext]
AnyRequest = Request[Any, Any, Any]


def _origin(request: AnyRequest, ctx: RequestContext) -> Origin:
    return request_origin(request, ctx=ctx)


@asynccontextmanager
async def one_transaction(ctx: RequestContext) -> AsyncIterator[None]:
    """Several service calls that must commit together (as a GraphQL operation does)."""
    async with ctx.session.request_scope():
        yield


def _services(request: AnyRequest) -> Services:
    services: Services = request.app.state.services
    return services


# -- my MFA --------------------------------------------------------------------------------------
class CodeBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str


class RemoveBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str | None = None
    recovery_code: str | None = None


class TenantSecurityBody(msgspec.Struct, forbid_unknown_fields=True):
    require_admin_mfa: bool


class MyMfaController(Controller):
    path = "/api/v1/me/mfa"
    tags = ["mfa"]

    @get("/", summary="My MFA status")
    async def status(self, ctx: Ctx, request: AnyRequest) -> dict[str, Any]:
        return asdict(await _services(request).mfa.status(ctx))

    @post("/totp", summary="Start setting up an authenticator (TOTP)", status_code=201)
    async def begin(self, ctx: Ctx, request: AnyRequest) -> Response[dict[str, Any]]:
        enrollment = await _services(request).mfa.begin_enrollment(ctx)
        return Response(asdict(enrollment), status_code=201, headers={"Cache-Control": "no-store"})

    @post("/totp/confirm", summary="Turn the authenticator on with its first code", status_code=200)
    async def confirm(
        self, ctx: Ctx, request: AnyRequest, data: JSONBody[CodeBody]
    ) -> Response[dict[str, Any]]:
        codes = await _services(request).mfa.confirm_enrollment(
            ctx, data.code, _origin(request, ctx)
        )
        return Response({"recovery_codes": codes}, headers={"Cache-Control": "no-store"})

    @post(
        "/totp/remove",
        summary="Remove the authenticator (with a code or a recovery code)",
        status_code=204,
    )
    async def remove(self, ctx: Ctx, request: AnyRequest, data: JSONBody[RemoveBody]) -> None:
        await _services(request).mfa.remove(
            ctx, code=data.code, recovery_code=data.recovery_code, origin=_origin(request, ctx)
        )

    @post(
        "/recovery-codes", summary="New recovery codes (the old ones stop working)", status_code=200
    )
    async def recovery_codes(
        self, ctx: Ctx, request: AnyRequest, data: JSONBody[CodeBody]
    ) -> Response[dict[str, Any]]:
        codes = await _services(request).mfa.regenerate_recovery_codes(
            ctx, data.code, _origin(request, ctx)
        )
        return Response({"recovery_codes": codes}, headers={"Cache-Control": "no-store"})


class TenantSecurityController(Controller):
    path = "/api/v1/tenant/security"
    tags = ["mfa"]

    @get("/", summary="The tenant's sign-in rules (admins)")
    async def get_rules(self, ctx: Ctx, request: AnyRequest) -> dict[str, Any]:
        return {"require_admin_mfa": await _services(request).mfa.admin_mfa_required(ctx)}

    @patch("/", summary="Change the tenant's sign-in rules (admins)")
    async def set_rules(
        self, ctx: Ctx, request: AnyRequest, data: JSONBody[TenantSecurityBody]
    ) -> dict[str, Any]:
        value = await _services(request).mfa.set_admin_mfa_required(
            ctx, data.require_admin_mfa, _origin(request, ctx)
        )
        return {"require_admin_mfa": value}


# -- devices -------------------------------------------------------------------------------------
class MyDevicesController(Controller):
    path = "/api/v1/me/sessions"
    tags = ["devices"]

    @get("/", summary="My signed-in devices and authorized apps")
    async def list_devices(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [asdict(d) for d in await devices.my_devices(ctx)]}

    @delete("/{session_id:uuid}", summary="Sign a device out (revoke its session)", status_code=204)
    async def revoke(self, ctx: Ctx, request: AnyRequest, session_id: FromPath[uuid.UUID]) -> None:
        await devices.revoke_my_device(ctx, session_id, _origin(request, ctx))


class UserSessionsController(Controller):
    path = "/api/v1/users/{user_id:uuid}"
    tags = ["devices"]

    @get("/sessions", summary="A user's devices (admins)")
    async def list_devices(self, ctx: Ctx, user_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return {"items": [asdict(d) for d in await devices.user_devices(ctx, user_id)]}

    @delete("/sessions", summary="Revoke all of a user's sessions (admins)", status_code=200)
    async def revoke_all(
        self, ctx: Ctx, request: AnyRequest, user_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        count = await devices.revoke_user_devices(ctx, user_id, _origin(request, ctx))
        return {"revoked": count}

    @post(
        "/deactivate",
        summary="Deactivate a user: sign-in and refresh stop at once (admins)",
        status_code=200,
    )
    async def deactivate(
        self, ctx: Ctx, request: AnyRequest, user_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        count = await devices.set_user_active(ctx, user_id, False, _origin(request, ctx))
        return {"user_id": user_id, "active": False, "sessions_revoked": count}

    @post("/activate", summary="Reactivate a user (admins)", status_code=200)
    async def activate(
        self, ctx: Ctx, request: AnyRequest, user_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        await devices.set_user_active(ctx, user_id, True, _origin(request, ctx))
        return {"user_id": user_id, "active": True}


# -- OAuth apps ------------------------------------------------------------------------------------
class ClientCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    client_type: str
    redirect_uris: list[str] = msgspec.field(default_factory=list)
    grant_types: list[str] = msgspec.field(default_factory=lambda: ["authorization_code"])
    allowed_scopes: list[str] = msgspec.field(default_factory=list)
    role: str | None = None


class ClientUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    redirect_uris: list[str] | UnsetType = UNSET
    grant_types: list[str] | UnsetType = UNSET
    allowed_scopes: list[str] | UnsetType = UNSET
    role: str | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET


def client_body(client: Client, secret: str | None = None) -> dict[str, Any]:
    """An app as the API shows it: never the secret's hash; the secret itself once."""
    body = {k: v for k, v in asdict(client).items() if k not in ("secret_hash", "tenant_id")}
    if secret is not None:
        body["client_secret"] = secret
    return body


class OAuthClientsController(Controller):
    path = "/api/v1/oauth-clients"
    tags = ["oauth clients"]

    @get("/", summary="The tenant's registered apps (admins)")
    async def list_clients(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": [client_body(c) for c in await clients.list_clients(ctx)]}

    @post(
        "/",
        summary="Register an app (admins); a confidential app's secret is shown once",
        status_code=201,
    )
    async def create(
        self, ctx: Ctx, request: AnyRequest, data: JSONBody[ClientCreate]
    ) -> Response[dict[str, Any]]:
        created = await clients.create_client(
            ctx,
            ClientInput(
                name=data.name,
                client_type=data.client_type,
                redirect_uris=data.redirect_uris,
                grant_types=data.grant_types,
                allowed_scopes=data.allowed_scopes,
                role=data.role,
            ),
            _origin(request, ctx),
        )
        return Response(
            client_body(created.client, created.client_secret),
            status_code=201,
            headers={
                "Location": f"/api/v1/oauth-clients/{created.client.id}",
                "Cache-Control": "no-store",
            },
        )

    @get("/{client_id:uuid}", summary="One app (admins)")
    async def get_one(self, ctx: Ctx, client_id: FromPath[uuid.UUID]) -> dict[str, Any]:
        return client_body(await clients.get_client(ctx, client_id))

    @patch("/{client_id:uuid}", summary="Change an app (admins)")
    async def update(
        self,
        ctx: Ctx,
        request: AnyRequest,
        client_id: FromPath[uuid.UUID],
        data: JSONBody[ClientUpdate],
    ) -> dict[str, Any]:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        async with one_transaction(ctx):
            client = await clients.update_client(ctx, client_id, changes, _origin(request, ctx))
        return client_body(client)

    @post(
        "/{client_id:uuid}/secret",
        summary="A new secret for a confidential app (admins)",
        status_code=200,
    )
    async def rotate_secret(
        self, ctx: Ctx, request: AnyRequest, client_id: FromPath[uuid.UUID]
    ) -> Response[dict[str, Any]]:
        rotated = await clients.rotate_secret(ctx, client_id, _origin(request, ctx))
        return Response(
            client_body(rotated.client, rotated.client_secret),
            headers={"Cache-Control": "no-store"},
        )

    @delete(
        "/{client_id:uuid}", summary="Delete an app and end its sessions (admins)", status_code=204
    )
    async def remove(self, ctx: Ctx, request: AnyRequest, client_id: FromPath[uuid.UUID]) -> None:
        await clients.delete_client(ctx, client_id, _origin(request, ctx))


SECURITY_CONTROLLERS = [
    MyMfaController,
    TenantSecurityController,
    MyDevicesController,
    UserSessionsController,
    OAuthClientsController,
]
