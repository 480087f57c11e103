"""Backoff against password and MFA-code guessing, per account and per source address.

Counters live in the database (`auth_throttle`), so every server process sees the same ones,
and are keyed by SHA-256 hashes. Each failure counts; after a policy's free failures, each
further one blocks the key for twice as long as the one before (capped). Failures older than
the window are forgotten. A success clears the account's counter, not the source's.

A blocked attempt is answered 429 with Retry-After before any password is checked, so a
throttled answer says nothing about the password. The account key is the tenant slug (or id)
and email as typed, whether or not they exist: an unknown account is throttled exactly like a
known one, and the answers stay uniform.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert

from backend.auth import retention
from backend.auth.models import ThrottleCounter
from backend.db.base import table_of
from backend.db.session import Database
from backend.errors import CaravanError

_counters = table_of(ThrottleCounter)


class TooManyAttempts(CaravanError):
    status = 429
    code = "too_many_attempts"
    title = "Too many attempts"
    graphql_code = "TOO_MANY_ATTEMPTS"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts: try again in {retry_after} seconds")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Policy:
    free_failures: int
    first_delay_seconds: int
    max_delay_seconds: int
    window_seconds: int


ACCOUNT = Policy(free_failures=5, first_delay_seconds=2, max_delay_seconds=900, window_seconds=900)
SOURCE = Policy(free_failures=20, first_delay_seconds=2, max_delay_seconds=900, window_seconds=900)


@dataclass(frozen=True)
class Key:
    hashed: str
    policy: Policy

    @classmethod
    def of(cls, kind: str, value: str, policy: Policy) -> Key:
        return cls(hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest(), policy)


def sign_in_keys(tenant: str, email: str, source_ip: str | None) -> list[Key]:
    keys = [Key.of("account", f"{tenant.strip().lower()}\x00{email.strip().lower()}", ACCOUNT)]
    if source_ip:
        keys.append(Key.of("source", source_ip, SOURCE))
    return keys


def mfa_keys(user_key: str, source_ip: str | None) -> list[Key]:
    keys = [Key.of("mfa", user_key, ACCOUNT)]
    if source_ip:
        keys.append(Key.of("source", source_ip, SOURCE))
    return keys


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def check(self, keys: list[Key]) -> None:
        """TooManyAttempts when any key is blocked right now."""
        async with self.db.plain_transaction() as conn:
            result = await conn.execute(
                select(func.max(_counters.c.blocked_until), func.now()).where(
                    _counters.c.key.in_([k.hashed for k in keys])
                )
            )
            blocked_until, now = result.one()
        if blocked_until is not None and blocked_until > now:
            raise TooManyAttempts(max(1, math.ceil((blocked_until - now).total_seconds())))

    async def failed(self, keys: list[Key]) -> None:
        async with self.db.plain_transaction() as conn:
            for key in keys:
                await conn.execute(self._count_failure(key))
            if retention.due():
                await retention.prune_throttle(conn)

    async def succeeded(self, keys: list[Key]) -> None:
        """Forget an account's failures (a source keeps its count)."""
        async with self.db.plain_transaction() as conn:
            await conn.execute(
                delete(_counters).where(
                    _counters.c.key.in_([k.hashed for k in keys if k.policy is not SOURCE])
                )
            )

    @staticmethod
    def _count_failure(key: Key) -> Any:
        """One atomic upsert: restart the count after a quiet window, then back off."""
        p = key.policy
        now = func.now()
        stale = _counters.c.last_failure_at < now - timedelta(seconds=p.window_seconds)
        new_failures = case((stale, literal(1)), else_=_counters.c.failures + 1)
        over = new_failures - p.free_failures
        delay = func.least(
            p.max_delay_seconds,
            p.first_delay_seconds * func.power(2, func.greatest(over - 1, 0)),
        )
        blocked = case(
            (over > 0, now + func.make_interval(0, 0, 0, 0, 0, 0, delay)),
            else_=None,
        )
        first_blocked = (
            now + timedelta(seconds=p.first_delay_seconds) if p.free_failures < 1 else None
        )
        return (
            insert(_counters)
            .values(
                key=key.hashed,
                failures=1,
                last_failure_at=now,
                blocked_until=first_blocked,
            )
            .on_conflict_do_update(
                index_elements=[_counters.c.key],
                set_={"failures": new_failures, "last_failure_at": now, "blocked_until": blocked},
            )
        )
