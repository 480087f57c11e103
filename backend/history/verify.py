"""`caravan audit verify`: recompute every tenant's chain and say where it was tampered with.

For each tenant: every signed checkpoint must verify against a trusted key; the seals must run
gap-free from the chain's start (seq 1, or the boundary of a signed prune checkpoint), each
linking to the previous one; each sealed row must still encode to its seal (so an edited,
deleted or reordered row is named), and a history value that is present must still hash to its
sealed digest; the chain must contain and agree with every signed checkpoint (so a chain the
owner rewrote consistently, or cut short, is caught); and no row may stay unsealed longer than
the allowed age. The first finding of a tenant is the first place it was tampered with.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.session import Database
from backend.history.audit_tenants import TenantRef
from backend.history.chain import GENESIS, link, value_matches
from backend.history.checkpoints import (
    PRUNE,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    open_checkpoint,
)
from backend.history.sealer import SOURCES
from backend.history.seals import HISTORY, seals

PAGE = 5000
MAX_FINDINGS = 50  # per tenant: after the first few, the rest is usually consequence


@dataclass(frozen=True)
class Finding:
    problem: str
    detail: str
    seq: int | None = None
    source: str | None = None
    row_id: uuid.UUID | None = None


@dataclass
class TenantReport:
    tenant_id: uuid.UUID
    slug: str
    seals_checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    unsealed_pending: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["ok"] = self.ok
        return body


@dataclass
class _Prunes:
    starts: dict[int, str]  # first seq a chain may start at -> the hash it links to
    through: dict[str, int]  # per source: rows sealed up to this seq may be gone


def _prunes(checkpoints: Sequence[Checkpoint]) -> _Prunes:
    starts = {1: GENESIS}
    through = {source: 0 for source in SOURCES}
    for cp in checkpoints:
        if cp.kind != PRUNE:
            continue
        starts[cp.pruned.get("seals_through", 0) + 1] = cp.hash
        for source in SOURCES:
            through[source] = max(through[source], cp.pruned.get(f"{source}_through", 0))
    return _Prunes(starts, through)


async def _checkpoints(
    store: CheckpointStore, tenant_id: uuid.UUID, keys: dict[str, ECKey], report: TenantReport
) -> list[Checkpoint]:
    valid = []
    for name in await store.names(tenant_id):
        try:
            valid.append(open_checkpoint(name, await store.get(tenant_id, name), tenant_id, keys))
        except CheckpointError as exc:
            report.add(Finding("checkpoint_untrusted", f"checkpoint {name}: {exc}"))
    report.checkpoints = len(valid)
    return valid


async def _rows(
    conn: AsyncConnection, source: str, ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    if not ids:
        return {}
    table = SOURCES[source]
    result = await conn.execute(select(table).where(table.c.id.in_(ids)))
    return {row["id"]: dict(row) for row in result.mappings()}


async def _walk(
    conn: AsyncConnection, report: TenantReport, prunes: _Prunes, watch: set[int]
) -> tuple[int, dict[int, str]]:
    """Check every seal in order; returns the first seq present and the hashes at `watch`."""
    seen: dict[int, str] = {}
    first = 0
    expected = 0
    prev = GENESIS
    after = 0
    while True:
        page = (
            await conn.execute(
                select(seals).where(seals.c.id > after).order_by(seals.c.id).limit(PAGE)
            )
        ).all()
        if not page:
            break
        rows = {
            source: await _rows(conn, source, [s.row_id for s in page if s.source == source])
            for source in SOURCES
        }
        for seal in page:
            if first == 0:
                first = expected = seal.id
                if seal.id not in prunes.starts:
                    missing = max(start for start in prunes.starts if start < seal.id)
                    report.add(
                        Finding(
                            "seals_deleted",
                            f"seals {missing}..{seal.id - 1} at the start of the chain are "
                            "missing (deleted; no signed prune checkpoint covers them)",
                            missing,
                        )
                    )
                    prev = seal.prev_hash
                else:
                    prev = prunes.starts[seal.id]
            _check_seal(report, seal, expected, prev, rows, prunes)
            prev, expected = seal.hash, seal.id + 1
            report.seals_checked += 1
            if seal.id in watch:
                seen[seal.id] = seal.hash
        after = page[-1].id
    report.head_seq = expected - 1 if first else 0
    report.head_hash = prev
    return first, seen


def _check_seal(
    report: TenantReport,
    seal: Any,
    expected: int,
    prev: str,
    rows: dict[str, dict[uuid.UUID, dict[str, Any]]],
    prunes: _Prunes,
) -> None:
    where = f"seal {seal.id} ({seal.source} row {seal.row_id})"
    if seal.id != expected:
        report.add(
            Finding(
                "seals_deleted",
                f"seals {expected}..{seal.id - 1} are missing (deleted)",
                expected,
            )
        )
    elif seal.prev_hash != prev:
        report.add(
            Finding(
                "link_broken",
                f"{where} does not follow seal {seal.id - 1}: seals were reordered, "
                "replaced or rewritten",
                seal.id,
                seal.source,
                seal.row_id,
            )
        )
    row = rows.get(seal.source, {}).get(seal.row_id)
    if row is None:
        if seal.id > prunes.through.get(seal.source, 0):
            report.add(
                Finding(
                    "row_deleted",
                    f"{where}: the row is gone (deleted)",
                    seal.id,
                    seal.source,
                    seal.row_id,
                )
            )
        return
    if link(seal.prev_hash, seal.id, seal.source, row) != seal.hash:
        report.add(
            Finding(
                "row_altered",
                f"{where}: the row no longer matches its seal (edited, or seals reordered)",
                seal.id,
                seal.source,
                seal.row_id,
            )
        )
    elif seal.source == HISTORY and not value_matches(row):
        report.add(
            Finding(
                "value_altered",
                f"{where}: a value no longer matches its sealed digest (edited)",
                seal.id,
                seal.source,
                seal.row_id,
            )
        )


async def _unsealed(conn: AsyncConnection, report: TenantReport, max_age: timedelta) -> None:
    cutoff = datetime.now(UTC) - max_age
    for source, table in SOURCES.items():
        sealed = exists().where(
            and_(
                seals.c.tenant_id == table.c.tenant_id,
                seals.c.source == source,
                seals.c.row_id == table.c.id,
            )
        )
        stale = table.c.occurred_at < cutoff
        counts = (
            await conn.execute(
                select(
                    func.count().filter(stale),
                    func.count(),
                    func.min(table.c.occurred_at),
                ).where(~sealed)
            )
        ).one()
        report.unsealed_pending += counts[1] - counts[0]
        if counts[0]:
            oldest = (
                await conn.execute(
                    select(table.c.id).where(~sealed).order_by(table.c.occurred_at).limit(1)
                )
            ).scalar_one()
            report.add(
                Finding(
                    "unsealed",
                    f"{counts[0]} {source} row(s) unsealed for longer than "
                    f"{int(max_age.total_seconds())} s (oldest from {counts[2].isoformat()}): "
                    "the sealer is not running or a transaction holds it back",
                    None,
                    source,
                    oldest,
                )
            )


def _compare_checkpoints(
    report: TenantReport, checkpoints: list[Checkpoint], first: int, seen: dict[int, str]
) -> None:
    for cp in checkpoints:
        if cp.seq == 0:
            continue
        if cp.seq > report.head_seq:
            report.add(
                Finding(
                    "chain_truncated",
                    f"signed checkpoint {cp.name} ({cp.at.isoformat()}) vouches for seal "
                    f"{cp.seq}, but the chain ends at {report.head_seq}: seals were deleted",
                    report.head_seq + 1,
                )
            )
        elif first and cp.seq >= first and seen.get(cp.seq) != cp.hash:
            report.add(
                Finding(
                    "checkpoint_mismatch",
                    f"seal {cp.seq} differs from signed checkpoint {cp.name} "
                    f"({cp.at.isoformat()}): the chain up to it was rewritten",
                    cp.seq,
                )
            )


async def verify_tenant(
    db: Database,
    tenant: TenantRef,
    keys: dict[str, ECKey],
    store: CheckpointStore,
    max_unsealed_age: timedelta,
) -> TenantReport:
    report = TenantReport(tenant.id, tenant.slug)
    checkpoints = await _checkpoints(store, tenant.id, keys, report)
    prunes = _prunes(checkpoints)
    async with db.tenant_transaction(tenant.id) as conn:
        first, seen = await _walk(conn, report, prunes, {cp.seq for cp in checkpoints})
        await _unsealed(conn, report, max_unsealed_age)
    _compare_checkpoints(report, checkpoints, first, seen)
    report.findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    return report
