"""OAuth scopes: the ceiling a token puts on what its principal may do.

A first-party session carries no scope list (no ceiling beyond the user's roles). A third-party
token may do an action only if it holds the scope that covers it; roles still decide the rest,
so a token never exceeds either.
"""

from __future__ import annotations

from backend.context import RequestContext
from backend.errors import Forbidden

# Each OAuth scope a client may ask for, with the line the consent page shows for it.
OAUTH_SCOPES = {
    "openid": "Sign-in identity (an ID token)",
    "profile": "Your name",
    "email": "Your email address",
    "offline_access": "Stay signed in (a refresh token)",
    "crm.read": "Read CRM records",
    "crm.write": "Create, change and delete CRM records",
    "crm.export": "Export CRM records",
    "audit.read": "Read change history and audit events",
    "admin": "Administer the tenant (users, roles, apps)",
}

# Which scope an action on tenant data needs.
ACTION_SCOPES = {
    "read": "crm.read",
    "create": "crm.write",
    "update": "crm.write",
    "delete": "crm.write",
    "export": "crm.export",
    "read_history": "audit.read",
    "admin": "admin",
}


def require_scope(ctx: RequestContext, action: str) -> None:
    scopes = ctx.principal.scopes
    if scopes is None:
        return
    needed = ACTION_SCOPES[action]
    if needed not in scopes:
        raise Forbidden(
            f"this token lacks the '{needed}' scope needed to {action}",
            code="insufficient_scope",
        )
