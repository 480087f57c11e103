"""The audit chain's background work inside `caravan serve`: seal every few seconds
(CARAVAN_SEAL_INTERVAL) the tenants this process wrote for, and every tenant at start and with
each checkpoint run; write signed head checkpoints every few minutes
(CARAVAN_CHECKPOINT_INTERVAL). An interval of 0 turns that part off. Several server processes
may all run it: the per-tenant advisory lock lets one seal a tenant at a time, and a checkpoint
is written only when the chain grew since the last one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from backend.auth.keyring import KeyRing
from backend.db.session import Database
from backend.history import pending
from backend.history.audit_tenants import audit_tenants
from backend.history.checkpoints import CheckpointStore, checkpoint_tenant
from backend.history.sealer import seal_tenant

log = logging.getLogger("caravan.audit")
SWEEP_SECONDS = 300  # between full sweeps when checkpoints are off


class AuditScheduler:
    def __init__(
        self,
        db: Database,
        keys: KeyRing,
        store: CheckpointStore,
        *,
        seal_interval: float,
        checkpoint_interval: float,
    ) -> None:
        self.db = db
        self.keys = keys
        self.store = store
        self.seal_interval = seal_interval
        self.checkpoint_interval = checkpoint_interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.seal_interval > 0 or self.checkpoint_interval > 0:
            self._task = asyncio.create_task(self._run(), name="caravan-audit")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def tick(self, *, checkpoint: bool, sweep: bool = True) -> None:
        """Seal (and checkpoint); a sweep walks every tenant, otherwise only the tenants this
        process wrote for lately (backend.history.pending) are sealed."""
        if not sweep and not checkpoint:
            if self.seal_interval > 0:
                for tenant_id in pending.recent():
                    await seal_tenant(self.db, tenant_id)
            return
        for tenant in await audit_tenants(self.db):
            if self.seal_interval > 0:
                await seal_tenant(self.db, tenant.id)
            if checkpoint:
                await self.keys.fresh()
                await checkpoint_tenant(self.db, self.keys.current, self.store, tenant.id)

    async def _run(self) -> None:
        sleep = min(i for i in (self.seal_interval, self.checkpoint_interval) if i > 0)
        next_checkpoint = time.monotonic() + self.checkpoint_interval
        # Other processes' rows: a full sweep at start and then every sweep interval.
        sweep_every = self.checkpoint_interval or SWEEP_SECONDS
        next_sweep = time.monotonic()
        while True:
            now = time.monotonic()
            due = self.checkpoint_interval > 0 and now >= next_checkpoint
            sweep = now >= next_sweep
            try:
                await self.tick(checkpoint=due, sweep=sweep)
            except Exception:  # keep sealing after a transient failure
                log.exception("audit sealing failed; retrying in %s s", sleep)
            if due:
                next_checkpoint = time.monotonic() + self.checkpoint_interval
            if sweep:
                next_sweep = time.monotonic() + sweep_every
            await asyncio.sleep(sleep)
