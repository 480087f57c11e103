"""The SLA breach check inside `caravan serve`, every CARAVAN_SLA_CHECK_INTERVAL seconds (0:
off), like the audit sealer (backend/history/scheduler.py). Several processes may run it: each
case is marked once (rows another checker holds are skipped, marked ones are not selected)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from backend.crm.cases.commands import sla_check
from backend.db.session import Database

log = logging.getLogger("caravan.sla")


class SlaScheduler:
    def __init__(self, db: Database, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="caravan-sla")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await sla_check(self.db)
            except Exception:  # keep checking after a transient failure
                log.exception("SLA check failed; retrying in %s s", self.interval)
            await asyncio.sleep(self.interval)
