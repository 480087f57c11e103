"""Grandfather-father-son retention: keep the newest backup of each of the last N days that
have backups, of the last N ISO weeks, and of the last N months; prune deletes the rest.

Each series (full backups; each tenant's backups) is kept on its own. The newest backup of a
series is always kept. Object-locked backups that the policy drops stay until their lock ends
(the store refuses the delete; prune reports them as locked).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


class Dated(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def kind(self) -> str: ...

    @property
    def tenant_id(self) -> str | None: ...


def _newest_per_bucket(
    newest_first: Sequence[Dated], bucket: Callable[[datetime], Hashable], count: int
) -> set[str]:
    kept: set[str] = set()
    seen: set[Hashable] = set()
    for backup in newest_first:
        key = bucket(backup.created_at)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(key)
        kept.add(backup.id)
    return kept


def to_keep(backups: Sequence[Dated], policy: Policy, now: datetime) -> set[str]:
    series: dict[tuple[str, str | None], list[Dated]] = {}
    for backup in backups:
        series.setdefault((backup.kind, backup.tenant_id), []).append(backup)
    kept: set[str] = set()
    for members in series.values():
        newest_first = sorted(members, key=lambda b: b.created_at, reverse=True)
        kept.add(newest_first[0].id)
        kept |= _newest_per_bucket(newest_first, lambda t: t.date(), policy.daily)
        kept |= _newest_per_bucket(newest_first, lambda t: t.isocalendar()[:2], policy.weekly)
        kept |= _newest_per_bucket(newest_first, lambda t: (t.year, t.month), policy.monthly)
    return kept
