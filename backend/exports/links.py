"""Short-lived, single-use download links. The token names its tenant and export (so the
download finds them without a session) and carries a 256-bit secret of which only the SHA-256
is stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from backend.errors import NotFound


@dataclass(frozen=True)
class LinkToken:
    tenant_id: uuid.UUID
    export_id: uuid.UUID
    secret: bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.secret).digest()

    def encode(self) -> str:
        raw = self.tenant_id.bytes + self.export_id.bytes + self.secret
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_token(tenant_id: uuid.UUID, export_id: uuid.UUID) -> LinkToken:
    return LinkToken(tenant_id, export_id, secrets.token_bytes(32))


def parse_token(encoded: str) -> LinkToken:
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 64:
        raise NotFound("no such download link", field="token", code="link_invalid")
    return LinkToken(uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32]), raw[32:])
