"""Claiming an Idempotency-Key, storing the answer it got, and finding it again.

A key belongs to one user of one tenant (a tenant table, under row-level security) and lives
24 hours. The first request claims it ("pending") in its own committed transaction before
doing any work, so a concurrent duplicate sees the claim and is told to wait; a claim whose
request died (pending past its lock) may be taken over. Answers of 5xx are never stored: the
key is released and a retry runs again. A request whose work committed ("applied", marked in
the work's own transaction: backend/idempotency/inflight.py) is never run again, even if its
process died before its answer was stored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from backend.context import Principal
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database
from backend.idempotency.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
CLAIM_LOCK = timedelta(seconds=60)
_keys = table_of(IdempotencyKey)


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # run the request, then `complete` or `release`
    REPLAY = "replay"  # answer with `response`
    REUSED = "reused"  # the key was used for a different request
    IN_PROGRESS = "in_progress"  # the first request with this key is still running
    LOST = "lost"  # its work committed, then its process died before the answer was stored


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    response: StoredResponse | None = field(default=None)


def _mine(principal: Principal, key: str) -> ColumnElement[bool]:
    return and_(
        _keys.c.tenant_id == principal.tenant_id,
        _keys.c.user_id == principal.user_id,
        _keys.c.key == key,
    )


async def claim(db: Database, principal: Principal, key: str, request_hash: str) -> Claim:
    now = func.now()
    fresh = {
        "request_hash": request_hash,
        "state": "pending",
        "status_code": None,
        "headers": None,
        "body": None,
        "created_at": now,
        "locked_until": now + CLAIM_LOCK,
        "expires_at": now + KEY_LIFETIME,
    }
    async with db.tenant_transaction(principal.tenant_id) as conn:
        # The user's expired keys go as they claim new ones: storage stays bounded per user.
        await conn.execute(
            delete(_keys).where(
                _keys.c.tenant_id == principal.tenant_id,
                _keys.c.user_id == principal.user_id,
                _keys.c.expires_at <= now,
                _keys.c.key != key,
            )
        )
        inserted = (
            await conn.execute(
                insert(_keys)
                .values(
                    tenant_id=principal.tenant_id,
                    id=uuid7(),
                    user_id=principal.user_id,
                    key=key,
                    **fresh,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "user_id", "key"])
                .returning(_keys.c.id)
            )
        ).first()
        if inserted is not None:
            return Claim(ClaimState.CLAIMED)
        row = (
            (
                await conn.execute(
                    select(
                        _keys,
                        (_keys.c.expires_at <= now).label("expired"),
                        (_keys.c.locked_until <= now).label("abandoned"),
                    )
                    .where(_mine(principal, key))
                    .with_for_update()
                )
            )
            .mappings()
            .one()
        )
        if row["expired"] or (row["state"] == "pending" and row["abandoned"]):
            await conn.execute(update(_keys).where(_mine(principal, key)).values(**fresh))
            return Claim(ClaimState.CLAIMED)
        if row["request_hash"] != request_hash:
            return Claim(ClaimState.REUSED)
        if row["state"] == "applied" and row["abandoned"]:
            return Claim(ClaimState.LOST)
        if row["state"] in ("pending", "applied"):
            return Claim(ClaimState.IN_PROGRESS)
        stored = StoredResponse(row["status_code"], dict(row["headers"] or {}), row["body"] or b"")
        return Claim(ClaimState.REPLAY, stored)


async def complete(db: Database, principal: Principal, key: str, response: StoredResponse) -> None:
    async with db.tenant_transaction(principal.tenant_id) as conn:
        await conn.execute(
            update(_keys)
            .where(_mine(principal, key))
            .values(
                state="done",
                status_code=response.status,
                headers=response.headers,
                body=response.body,
            )
        )


async def release(
    db: Database, principal: Principal, key: str, response: StoredResponse | None = None
) -> None:
    """Forget a claim whose request failed on the server's side: a retry runs again. Unless its
    work had committed ("applied"): then its answer, whatever it was, is the one to replay."""
    async with db.tenant_transaction(principal.tenant_id) as conn:
        gone = await conn.execute(
            delete(_keys).where(_mine(principal, key), _keys.c.state == "pending")
        )
    if gone.rowcount == 0 and response is not None and response.status:
        await complete(db, principal, key, response)
