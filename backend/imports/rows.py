"""One CSV row of an import: its duplicate check, then create or update through the record
service in a savepoint of the batch's transaction. Returns the row's report entries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.context import RequestContext
from backend.errors import CaravanError
from backend.imports.csvfile import row_values
from backend.imports.duplicates import Known

if TYPE_CHECKING:
    from backend.imports.service import ImportJob

Report = list[dict[str, Any]]


def _problems(row: int, error: CaravanError) -> Report:
    if error.problems:
        return [{"row": row, "field": p.field, "code": p.code} for p in error.problems]
    return [{"row": row, "field": error.field or "row", "code": error.code}]


async def process_row(job: ImportJob, ctx: RequestContext, row: int, cells: list[str]) -> Report:
    """Row 1 is the first row after the header."""
    data = row_values(cells, job.columns, job.service.spec, job.custom_types)
    report: Report = []
    found = job.index.find(data) if job.index is not None else None
    if found is not None:
        field, known = found
        job.tally.duplicates += 1
        entry: dict[str, Any] = {"row": row, "field": field, "code": "duplicate"}
        entry["existing_id"] = str(known.record_id) if known.record_id is not None else None
        if known.first_row is not None:
            entry["first_row"] = known.first_row  # a duplicate within the file
        report.append(entry)
        if job.on_duplicate == "skip":
            job.tally.skipped += 1
            return report
        if job.on_duplicate == "update":
            return report + await _update(job, ctx, row, data, known)
    return report + await _create(job, ctx, row, data)


async def _create(job: ImportJob, ctx: RequestContext, row: int, data: dict[str, Any]) -> Report:
    try:
        async with ctx.session.savepoint():
            record = await job.service.create(ctx, data)
    except CaravanError as refused:
        return _problems(row, refused)
    job.tally.created += 1
    if job.index is not None:
        # Later rows may duplicate this one; a dry run's record is rolled back: no id to show.
        made = None if job.dry_run else record["id"]
        job.index.add(data, Known(made, record.get("version", 1), first_row=row))
    return []


async def _update(
    job: ImportJob, ctx: RequestContext, row: int, data: dict[str, Any], known: Known
) -> Report:
    if known.record_id is None:
        # The record an earlier row of this dry run made, rolled back since: count the update.
        job.tally.updated += 1
        return []
    try:
        async with ctx.session.savepoint():
            record = await job.service.update(ctx, known.record_id, data, known.version)
    except CaravanError as refused:
        return _problems(row, refused)
    job.tally.updated += 1
    if job.dry_run:  # the batch rolls back: the version it moved to goes back with it
        job.rolled_back.append((known, known.version))
    known.version = record.get("version", known.version)
    return []
