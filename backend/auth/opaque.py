"""Opaque credentials that name their tenant: refresh tokens, authorization codes, sign-in flow
handles (`<tenant-hex>.<secret>`) and public OAuth client ids (`<tenant-hex>.<id-hex>`).

The tenant part lets a lookup run inside that tenant's RLS-scoped transaction before anything
else is known; only a SHA-256 of a secret credential is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

MAX_LENGTH = 200
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_credential(tenant_id: uuid.UUID, nbytes: int = 32) -> str:
    return f"{tenant_id.hex}.{secrets.token_urlsafe(nbytes)}"


def tenant_of(credential: str) -> uuid.UUID | None:
    """The tenant a well-formed credential names; None for anything malformed."""
    if len(credential) > MAX_LENGTH:
        return None
    tenant_hex, dot, secret = credential.partition(".")
    if not dot or not _HEX32.match(tenant_hex) or not _SECRET.match(secret):
        return None
    return uuid.UUID(hex=tenant_hex)


def public_client_id(tenant_id: uuid.UUID, client_id: uuid.UUID) -> str:
    return f"{tenant_id.hex}.{client_id.hex}"


def parse_client_id(value: str | None) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not value or len(value) != 65:
        return None
    tenant_hex, dot, client_hex = value.partition(".")
    if not dot or not _HEX32.match(tenant_hex) or not _HEX32.match(client_hex):
        return None
    return uuid.UUID(hex=tenant_hex), uuid.UUID(hex=client_hex)
