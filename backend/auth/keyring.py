"""The signing-key ring in the database, shared by every server process.

Rotation (`caravan keys rotate`) adds a key that is published at once - in the JWKS and in
every process's verifying set - but only starts signing after the processes' cache lifetime
(plus a margin), so no process ever sees a token signed by a key it has not loaded. The key it
replaces keeps verifying until every token it can have signed has expired (the successor's
activation + the longest token lifetime + clock leeway); the JWKS publishes exactly the keys
that verify. `--now` activates at once (a compromised key); other processes then pick the new
key up on the first token naming it.

Each process caches the ring for a short time, and reloads at once when a token names a key id
it does not know (at most once a second, so garbage key ids cannot make it hammer the
database). Private keys are sealed with the secret key (backend/auth/secretbox.py).

The first key: CARAVAN_SIGNING_KEY when set, else (development) the key file under the data
dir's secrets/, else (production) a freshly generated key, imported when the ring is empty.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from backend.auth.keys import ALGORITHM, generate_key
from backend.auth.models import SigningKey
from backend.auth.secretbox import SecretBox
from backend.db.base import table_of
from backend.db.ids import uuid7
from backend.db.session import Database

log = logging.getLogger("caravan.keys")
_keys = table_of(SigningKey)
PURPOSE = "signing-key"
CACHE_SECONDS = 30.0
ACTIVATION_MARGIN_SECONDS = 5.0
FORCED_RELOAD_INTERVAL_SECONDS = 1.0
_HISTORY = 50  # keys read per load: far more than can still be verifying


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None
    verifies_until: datetime | None


@dataclass(frozen=True)
class _Entry:
    key: ECKey
    activates_at: datetime


class _Snapshot:
    """The keys that verify now, newest activation first."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.verifying = KeySet([e.key for e in entries])
        self.kids = frozenset(str(e.key.kid) for e in entries)

    def current(self, now: datetime) -> ECKey:
        for entry in self.entries:
            if entry.activates_at <= now:
                return entry.key
        return self.entries[-1].key  # only pending keys loaded: the oldest of them


class KeyRing:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        first_key: Callable[[], ECKey],
        longest_token_seconds: int,
        leeway_seconds: int,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.db = db
        self.box = box
        self._first_key = first_key
        self._window = timedelta(seconds=longest_token_seconds + leeway_seconds)
        self._cache_seconds = cache_seconds
        self._snapshot: _Snapshot | None = None
        self._loaded_at = float("-inf")
        self._forced_at = float("-inf")
        self._lock = asyncio.Lock()

    # -- the current view (load first) -------------------------------------------------------
    @property
    def snapshot(self) -> _Snapshot:
        if self._snapshot is None:
            raise RuntimeError("the key ring is not loaded: await KeyRing.load() first")
        return self._snapshot

    @property
    def current(self) -> ECKey:
        """The key that signs now."""
        return self.snapshot.current(datetime.now(UTC))

    @property
    def verifying(self) -> KeySet:
        return self.snapshot.verifying

    def knows(self, kid: str) -> bool:
        return kid in self.snapshot.kids

    def public_jwks(self) -> dict[str, Any]:
        keys = []
        for entry in self.snapshot.entries:
            public = entry.key.as_dict(private=False)
            public.update(use="sig", alg=ALGORITHM)
            keys.append(public)
        return {"keys": keys}

    # -- loading ---------------------------------------------------------------------------
    async def fresh(self) -> None:
        """Reload when the cached ring is older than the cache lifetime."""
        if time.monotonic() - self._loaded_at > self._cache_seconds:
            await self.load()

    async def find(self, kid: str) -> bool:
        """Is `kid` a verifying key? Reloads (rate-limited) when it is not known here."""
        await self.fresh()
        if self.knows(kid):
            return True
        if time.monotonic() - self._forced_at > FORCED_RELOAD_INTERVAL_SECONDS:
            self._forced_at = time.monotonic()
            await self.load()
        return self.knows(kid)

    async def load(self) -> None:
        async with self._lock:
            rows = await self._rows()
            if not rows:
                await self._insert(self._first_key(), activate_in=0)
                rows = await self._rows()
            self._snapshot = self._build(rows, datetime.now(UTC))
            self._loaded_at = time.monotonic()

    async def rotate(self, *, now: bool = False) -> tuple[ECKey, datetime]:
        """Add a key; it signs once every process has loaded it (or at once with `now`)."""
        await self.load()  # an empty ring takes its first key before it rotates
        key = generate_key()
        delay = 0.0 if now else self._cache_seconds + ACTIVATION_MARGIN_SECONDS
        activates_at = await self._insert(key, activate_in=delay)
        await self.load()
        log.info("signing key %s added; it signs from %s", key.kid, activates_at.isoformat())
        return key, activates_at

    async def describe(self) -> list[KeyInfo]:
        rows = await self._rows()
        infos = []
        for index, row in enumerate(rows):
            retired = rows[index - 1].activates_at if index > 0 else None
            until = retired + self._window if retired is not None else None
            infos.append(KeyInfo(row.kid, row.created_at, row.activates_at, retired, until))
        return infos

    async def _rows(self) -> list[Any]:
        async with self.db.plain_transaction() as conn:
            result = await conn.execute(
                select(_keys)
                .order_by(_keys.c.activates_at.desc(), _keys.c.id.desc())
                .limit(_HISTORY)
            )
            return list(result.all())

    async def _insert(self, key: ECKey, *, activate_in: float) -> datetime:
        key.ensure_kid()
        private = json.dumps(key.as_dict(private=True)).encode()
        created = datetime.now(UTC)
        activates_at = created + timedelta(seconds=activate_in)
        async with self.db.plain_transaction() as conn:
            await conn.execute(
                insert(_keys)
                .values(
                    id=uuid7(),
                    kid=key.kid,
                    algorithm=ALGORITHM,
                    public_jwk=key.as_dict(private=False),
                    private_jwk_sealed=self.box.seal(private, purpose=PURPOSE),
                    created_at=created,
                    activates_at=activates_at,
                )
                .on_conflict_do_nothing(index_elements=["kid"])
            )
        return activates_at

    def _build(self, rows: list[Any], now: datetime) -> _Snapshot:
        """rows: latest activation first. Pending keys, the active one, and each retired one
        while tokens it signed may still be alive."""
        entries = []
        active_seen = False
        for newer, row in itertools.pairwise([None, *rows]):
            if row.activates_at > now or not active_seen:
                active_seen = active_seen or row.activates_at <= now
                entries.append(_Entry(self._open(row), row.activates_at))
            elif newer is not None and newer.activates_at + self._window > now:
                entries.append(_Entry(self._open(row), row.activates_at))
        return _Snapshot(entries)

    def _open(self, row: Any) -> ECKey:
        key = ECKey.import_key(json.loads(self.box.open(row.private_jwk_sealed, purpose=PURPOSE)))
        if key.kid != row.kid:
            raise ValueError(f"signing key {row.kid} does not match its stored key id")
        return key
