"""Access tokens refused before they expire: revocation that bites on the next request.

An access token is a stateless JWT, so revoking its device session (sign-out, an admin cutting a
user's sessions, deactivation, refresh-token reuse, an app at /oauth/revoke) or the token itself
would otherwise leave it working until it expires. Revocations are rows of `token_revocations`:
a session (every token whose `sid` names it) or one token (its `jti`). A row matters for one
access-token lifetime (plus leeway and a margin for clock skew between servers): after that,
every token it could refuse has expired anyway.

Each server process keeps the rows of that window in memory, so the per-request check is two
set lookups, and keeps them current three ways:

1. the process that revokes applies the change itself the moment its transaction commits
   (`Database.observe_commits`), so the very next request it serves is refused;
2. every other process hears each committed row at once through LISTEN/NOTIFY (a trigger
   announces it), on a connection of its own;
3. polling as the safety net: a full reload every RELOAD_SECONDS (which also forgets rows past
   the window), and while the listener is down or was never started (LISTEN needs a direct
   connection, not a PgBouncer in transaction mode) a catch-up every UNHEARD_RELOAD_SECONDS that
   reads only the rows added since the last look (an index range on `revoked_at`, stamped with
   the clock at insert, looked at with an overlap for transactions still committing).

The check runs in the request path only when a reload or catch-up is due; otherwise it costs
two set lookups (about a microsecond; see tests/bench/bench_revocation.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.models import TokenRevocation
from backend.db.base import table_of
from backend.db.session import Database, after_commit

log = logging.getLogger("caravan.auth.revocation")

SESSION = "session"
TOKEN = "token"  # noqa: S105 - a kind of revocation, not a secret
CHANNEL = "caravan_revocations"  # the migration's trigger notifies on it
TOPIC = "token_revocations"  # the after-commit topic of this process's own revocations
CLOCK_MARGIN_SECONDS = 300
RELOAD_SECONDS = 30.0
UNHEARD_RELOAD_SECONDS = 1.0
CATCH_UP_OVERLAP_SECONDS = 10.0  # a revocation committing later than this is left to a reload
LISTEN_RETRY_SECONDS = 5.0
KEEP_ROWS_SECONDS = 86400  # the table's trigger refuses deleting younger rows
PRUNE_ONE_IN = 100  # about one reload in a hundred also deletes rows past KEEP_ROWS_SECONDS

_rows = table_of(TokenRevocation)
Entry = tuple[str, str]  # (kind, subject)


# -- revoking (inside the caller's transaction) -------------------------------------------------
async def revoke_sessions(conn: AsyncConnection, session_ids: Iterable[uuid.UUID]) -> None:
    """Every access token of these device sessions is refused once the transaction commits."""
    await _add(conn, [(SESSION, str(s)) for s in session_ids])


async def revoke_token(conn: AsyncConnection, jti: str) -> None:
    """This one access token (by its `jti`) is refused once the transaction commits."""
    await _add(conn, [(TOKEN, jti)])


async def _add(conn: AsyncConnection, entries: list[Entry]) -> None:
    if not entries:
        return
    await conn.execute(
        insert(_rows).values(revoked_at=func.clock_timestamp()),
        [{"kind": k, "subject": s} for k, s in entries],
    )
    for entry in entries:
        after_commit(conn, TOPIC, entry)


# -- checking (per request) -------------------------------------------------------------------
class RevocationList:
    """This process's view of the recent revocations. See the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        window_seconds: float,
        reload_seconds: float = RELOAD_SECONDS,
        unheard_reload_seconds: float = UNHEARD_RELOAD_SECONDS,
    ) -> None:
        self.db = db
        self.window_seconds = window_seconds
        self.reload_seconds = reload_seconds
        self.unheard_reload_seconds = unheard_reload_seconds
        self._sessions: set[str] = set()
        self._tokens: set[str] = set()
        self._loaded = False
        self._due = float("-inf")  # monotonic time of the next reload or catch-up
        self._full_due = float("-inf")  # monotonic time of the next full reload
        self._since: datetime | None = None  # database time a catch-up reads from
        self._lock = asyncio.Lock()
        # Entries applied while a reload is running: its snapshot may predate them.
        self._applied_during_reload: list[Entry] | None = None
        self._listening = False
        self._listener: asyncio.Task[None] | None = None
        db.observe_commits(TOPIC, self.apply)
        db.on_dispose(self.stop)

    @property
    def listening(self) -> bool:
        return self._listening

    def refuses(self, claims: Mapping[str, Any]) -> bool:
        """Whether a token with these (verified) claims has been revoked."""
        sid = claims.get("sid")
        if isinstance(sid, str) and sid in self._sessions:
            return True
        jti = claims.get("jti")
        return isinstance(jti, str) and jti in self._tokens

    def apply(self, entries: list[Entry]) -> None:
        for kind, subject in entries:
            if kind == SESSION:
                self._sessions.add(subject)
            elif kind == TOKEN:
                self._tokens.add(subject)
        if self._applied_during_reload is not None:
            self._applied_during_reload.extend(entries)

    async def fresh(self) -> None:
        """Reload or catch up when due; cheap when not."""
        if time.monotonic() < self._due:
            return
        if self._loaded and self._lock.locked():
            return  # another request is at it; the view it refreshes is seconds old
        async with self._lock:
            now = time.monotonic()
            if now < self._due:
                return
            if not self._loaded or now >= self._full_due or self._since is None:
                await self.reload()
            else:
                await self._catch_up(self._since)

    async def reload(self) -> None:
        """Read every row of the window afresh (forgetting older ones)."""
        self._applied_during_reload = []
        try:
            async with self.db.plain_transaction() as conn:
                seen_at = await _clock(conn)
                rows = (
                    await conn.execute(
                        select(_rows.c.kind, _rows.c.subject).where(
                            _rows.c.revoked_at > func.now() - _seconds(self.window_seconds)
                        )
                    )
                ).all()
                if secrets.randbelow(PRUNE_ONE_IN) == 0:
                    await _prune(conn, max(KEEP_ROWS_SECONDS, self.window_seconds) + 60)
            sessions = {r.subject for r in rows if r.kind == SESSION}
            tokens = {r.subject for r in rows if r.kind == TOKEN}
            for kind, subject in self._applied_during_reload:
                (sessions if kind == SESSION else tokens).add(subject)
        finally:
            self._applied_during_reload = None
        self._sessions, self._tokens = sessions, tokens
        self._loaded = True
        self._full_due = time.monotonic() + self.reload_seconds
        self._looked(seen_at)

    async def _catch_up(self, since: datetime) -> None:
        """Add the rows stamped since the last look (minus an overlap)."""
        async with self.db.plain_transaction() as conn:
            seen_at = await _clock(conn)
            rows = (
                await conn.execute(
                    select(_rows.c.kind, _rows.c.subject).where(_rows.c.revoked_at > since)
                )
            ).all()
        self.apply([(r.kind, r.subject) for r in rows])
        self._looked(seen_at)

    def _looked(self, seen_at: datetime) -> None:
        self._since = seen_at - timedelta(seconds=CATCH_UP_OVERLAP_SECONDS)
        interval = self.reload_seconds if self._listening else self.unheard_reload_seconds
        self._due = min(self._full_due, time.monotonic() + interval)

    # -- the listener --------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for other processes' revocations (a server's startup calls this)."""
        if self.db.listen_dsn is None:
            return  # no direct connection to listen on (PgBouncer): catch-ups every second
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="revocation-listener")

    async def stop(self) -> None:
        task, self._listener = self._listener, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        dsn = self.db.listen_dsn
        assert dsn is not None
        while True:
            try:
                await self._listen_once(dsn)
                log.warning("revocation listener lost its connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("revocation listener unavailable; polling", exc_info=True)
            await asyncio.sleep(LISTEN_RETRY_SECONDS)

    async def _listen_once(self, dsn: str) -> None:
        """LISTEN on one connection until it is lost (or the task is cancelled)."""
        conn = await asyncpg.connect(dsn, server_settings={"application_name": "caravan"})
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._heard)
            self._listening = True
            self._due = float("-inf")  # reload: rows committed before LISTEN began
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.reload_seconds)
                if not lost.is_set():
                    # A silently dead link delivers nothing: check it now and then.
                    await conn.fetchval("SELECT 1", timeout=5)
        finally:
            self._listening = False
            self._due = min(self._due, time.monotonic() + self.unheard_reload_seconds)
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        kind, _, subject = payload.partition(":")
        self.apply([(kind, subject)])


async def _clock(conn: AsyncConnection) -> datetime:
    stamped: datetime = (await conn.execute(select(func.clock_timestamp()))).scalar_one()
    return stamped


def _seconds(seconds: float) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, seconds)


async def _prune(conn: AsyncConnection, older_than_seconds: float) -> None:
    await conn.execute(
        delete(_rows).where(_rows.c.revoked_at < func.now() - _seconds(older_than_seconds))
    )
