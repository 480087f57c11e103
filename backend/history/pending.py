"""Tenants this process wrote history or audit rows for lately: the sealer's short list.

Sealing walks one tenant per transaction; walking every tenant every few seconds costs most of a
core at 10k tenants while nearly all of them have nothing to seal. Writers mark their tenant
here (before commit: a rolled-back write only costs one empty seal), and the scheduler seals
the tenants marked within the grace period, which outlasts any ordinary transaction. Rows
written by other processes (the CLI, other servers) are found by the full sweep the scheduler
still makes at start and with every checkpoint run."""

from __future__ import annotations

import time
import uuid

GRACE_SECONDS = 30.0

_marked: dict[uuid.UUID, float] = {}


def mark(tenant_id: uuid.UUID) -> None:
    _marked[tenant_id] = time.monotonic()


def recent(grace: float = GRACE_SECONDS) -> list[uuid.UUID]:
    """The tenants marked within `grace` seconds; older marks are forgotten."""
    cutoff = time.monotonic() - grace
    for tenant_id, at in list(_marked.items()):
        if at < cutoff:
            del _marked[tenant_id]
    return list(_marked)
