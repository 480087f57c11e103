"""Each tenant's policy version, remembered per process so a transaction need not read it.

A tenant transaction used to read `tenants.policy_version` as it began (one round trip of its
own). Now the version is remembered here and trusted only while this process LISTENs on
`caravan_policy`: every policy change sends a NOTIFY there in its transaction (see
`note_policy_change` in backend/db/session.py), delivered at commit to every process, which
forgets that tenant's version. The version is then read again, in the reader's transaction.

Safety net: a remembered version is trusted for at most TRUST_SECONDS, so a change made
without a NOTIFY (a manual UPDATE) or a notification lost with a dead connection is seen
within that time; losing the listening connection forgets everything and trusts nothing
until it is back. A forget that races a read is not undone by that read (the epoch check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import asyncpg

log = logging.getLogger("caravan.db.policy")
CHANNEL = "caravan_policy"
TRUST_SECONDS = 2.0
RECONNECT_SECONDS = 1.0


class PolicyVersions:
    def __init__(self, dsn: str | None) -> None:
        self._dsn = dsn
        self._versions: dict[uuid.UUID, tuple[int, float]] = {}
        self._epoch = 0  # bumped by every forget: a read that started before it is not kept
        self._listening = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def epoch(self) -> int:
        return self._epoch

    def get(self, tenant_id: uuid.UUID) -> int | None:
        """The tenant's version when it can be trusted without asking the database."""
        if not self._listening:
            return None
        found = self._versions.get(tenant_id)
        if found is None or time.monotonic() - found[1] > TRUST_SECONDS:
            return None
        return found[0]

    def remember(self, tenant_id: uuid.UUID, version: int, epoch: int) -> None:
        """Keep a version read in a transaction that began at `epoch`, unless a forget came
        since (the read may predate the change it announced)."""
        if self._listening and epoch == self._epoch:
            self._versions[tenant_id] = (version, time.monotonic())

    def forget(self, tenant_id: uuid.UUID | None = None) -> None:
        self._epoch += 1
        if tenant_id is None:
            self._versions.clear()
        else:
            self._versions.pop(tenant_id, None)

    # -- the listening connection ------------------------------------------------------------
    async def start(self) -> None:
        """Listen from now on (the server's startup); reconnects until `stop`."""
        if self._dsn is None or self._task is not None:
            return
        connected = asyncio.Event()
        self._task = asyncio.create_task(self._listen(connected), name="caravan-policy-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connected.wait(), timeout=10)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop()

    async def _listen(self, connected: asyncio.Event) -> None:
        assert self._dsn is not None
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self._conn = conn
                self.forget()  # anything remembered before could have missed a notification
                self._listening = True
                connected.set()
                await lost.wait()
                log.warning("policy listener lost its connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("policy listener could not connect")
            finally:
                await self._drop()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _drop(self) -> None:
        self._listening = False
        self.forget()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self.forget(uuid.UUID(payload))
        except ValueError:
            self.forget()
