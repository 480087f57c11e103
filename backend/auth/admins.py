"""Asking the policy module whether someone is a tenant admin, before they hold a token (MFA
requirement at sign-in, the `admin` scope at consent). No role logic of its own: it is
`backend.policy.admin.require_admin` for a first-party principal of that user."""

from __future__ import annotations

import uuid

from backend.context import Principal, RequestContext
from backend.db.session import Database
from backend.errors import Forbidden
from backend.policy.admin import require_admin


async def is_tenant_admin(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    ctx = RequestContext(
        principal=Principal(user_id=user_id, tenant_id=tenant_id), db=db, channel="system"
    )
    try:
        await require_admin(ctx)
    except Forbidden:
        return False
    return True


def require_first_party(ctx: RequestContext) -> None:
    """Managing one's own MFA and devices needs a first-party session, never an app's token."""
    if ctx.principal.scopes is not None:
        raise Forbidden(
            "this needs a first-party session (sign in at /auth/sign-in), not an app's token",
            code="first_party_required",
        )
