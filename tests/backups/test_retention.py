"""GFS retention: exactly the newest backup of each of the last N days, weeks and months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from backend.backups.retention import Policy, to_keep
from backend.runtime import Services
from tests.backups.conftest import backups
from tests.conftest import Cluster, new_tenant


@dataclass(frozen=True)
class Fake:
    id: str
    created_at: datetime
    kind: str = "full"
    tenant_id: str | None = None


def _series(start: datetime, days: int, per_day: int = 2) -> list[Fake]:
    out = []
    for d in range(days):
        for h in range(per_day):
            at = start - timedelta(days=d, hours=h * 6)
            out.append(Fake(f"{at:%Y%m%dT%H}", at))
    return out


def test_policy_keeps_newest_per_day_week_and_month() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)  # a Monday
    backups_ = _series(now, days=120)
    kept = to_keep(backups_, Policy(daily=7, weekly=4, monthly=3), now)
    daily = {f"{now - timedelta(days=d):%Y%m%dT%H}" for d in range(7)}
    # Newest of each ISO week: this week's is today's; earlier weeks end on Sundays.
    weekly = {f"{now:%Y%m%dT%H}"} | {
        f"{now - timedelta(days=1 + 7 * w):%Y%m%dT%H}" for w in range(3)
    }
    monthly = {f"{now:%Y%m%dT%H}", "20261130T12", "20261031T12"}
    assert kept == daily | weekly | monthly
    assert len(kept) == 7 + 2 + 2  # overlaps: today, and Sunday Dec 6 is both daily and weekly


def test_series_are_kept_separately_and_the_newest_always_survives() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    full = [Fake("f1", now - timedelta(days=3)), Fake("f2", now - timedelta(days=2))]
    tenant = [Fake("t1", now - timedelta(days=9), "tenant", "a")]
    assert to_keep([*full, *tenant], Policy(0, 0, 0), now) == {"f2", "t1"}
    assert to_keep([*full, *tenant], Policy(daily=5), now) == {"f1", "f2", "t1"}


async def test_prune_deletes_exactly_what_the_policy_drops(
    services: Services, client: httpx.AsyncClient, cluster: Cluster, data_dir: Path
) -> None:
    tenant = await new_tenant(services, client, "prune")
    service = backups(
        services,
        cluster,
        data_dir,
        backup_keep_daily=1,
        backup_keep_weekly=0,
        backup_keep_monthly=0,
    )
    made = [await service.run(tenant.slug) for _ in range(3)]
    full = await service.run()
    result = await service.prune()
    # Same day: daily=1 keeps only the newest of each series.
    assert sorted(result["kept"]) == sorted([made[-1].id, full.id])
    assert sorted(result["deleted"]) == sorted(m.id for m in made[:-1])
    assert {m.id for m in await service.list_backups()} == {made[-1].id, full.id}
    assert not (data_dir / "backups" / "archives" / made[0].id).exists()

    # Archives of failed runs (no manifest) go after a day; a recent one may still be uploading.
    root = data_dir / "backups" / "archives"
    for orphan in ("20200101T000000Z-full-0000000b", f"{made[-1].id[:16]}-full-0000000c"):
        (root / orphan).mkdir()
        (root / orphan / "archive.bin").write_bytes(b"x")
    result = await service.prune()
    assert result["deleted"] == ["20200101T000000Z-full-0000000b"]
    assert (root / f"{made[-1].id[:16]}-full-0000000c" / "archive.bin").exists()
