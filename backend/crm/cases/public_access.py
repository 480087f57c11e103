"""What every unauthenticated self-service call shares: the rate limits (the sign-in throttle's
database counters, backend/auth/throttle.py, so every server process sees the same ones), the
tenant named by a slug (unknown: exactly an unknown path's 404), and secret tokens (32 random
bytes, URL-safe; only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

from litestar.exceptions import NotFoundException

from backend.auth.throttle import Key, Policy, Throttle
from backend.db.session import Database
from backend.tenants.lookup import tenant_id_for_slug

# New web cases: a handful per source address an hour, and a ceiling per tenant so a spread-out
# flood cannot bury a tenant's queue. Past either, 429 with Retry-After (doubling waits).
SUBMIT_PER_SOURCE = Policy(
    free_failures=5, first_delay_seconds=60, max_delay_seconds=3600, window_seconds=3600
)
SUBMIT_PER_TENANT = Policy(
    free_failures=100, first_delay_seconds=10, max_delay_seconds=900, window_seconds=600
)
# Status pages, customer replies and survey answers, per source address.
LINK_PER_SOURCE = Policy(
    free_failures=60, first_delay_seconds=5, max_delay_seconds=300, window_seconds=60
)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def new_token() -> tuple[str, str]:
    """(the secret for the link, its hash for the database)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return _TOKEN.match(token) is not None


def not_found() -> NotFoundException:
    """The answer of an unknown path: for unknown slugs, wrong tokens, other tenants' tokens."""
    return NotFoundException()


async def throttle(db: Database, keys: list[Key]) -> None:
    """Count this call, refusing it (429) if a key is blocked. A call already refused is not
    counted, so a blocked source does not use up its tenant's allowance."""
    limiter = Throttle(db)
    await limiter.check(keys)
    await limiter.failed(keys)
    await limiter.check(keys)


def source_key(kind: str, source_ip: str | None, policy: Policy) -> Key:
    return Key.of(kind, source_ip or "unknown", policy)


async def tenant_of(db: Database, slug: str) -> uuid.UUID:
    tenant_id = await tenant_id_for_slug(db, slug)
    if tenant_id is None:
        raise not_found()
    return tenant_id
