"""Self-references that form a tree (a contact reports to a contact, an account has a parent
account): a write that would close a loop is refused. A service rule (a write hook), so it
holds for every skin and for sync; checked on the written row inside the write's transaction,
so raising rolls the change and its history back."""

from __future__ import annotations

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.crm.together import deadlock_as_conflict
from backend.errors import ValidationFailed
from backend.records.service import Record, WriteHook
from backend.records.spec import EntitySpec


def no_cycles(column: str) -> WriteHook:
    """A hook refusing (422, code `cycle`, the column as field) a link in `column` that leads,
    link by link, back to the record itself."""

    async def check(
        conn: AsyncConnection,
        ctx: RequestContext,
        spec: EntitySpec,
        before: Record | None,
        after: Record | None,
    ) -> None:
        if after is None or after[column] is None:
            return
        if before is not None and before[column] == after[column]:
            return  # the link did not change: no new loop
        # One tree change at a time per tenant and tree, until commit: two writes closing a
        # loop together (A -> B, B -> A) would otherwise each pass, neither seeing the other.
        # The waiting one's check then reads the committed link (a fresh snapshot).
        tree = func.hashtext(f"{spec.table.name}.{column}")
        with deadlock_as_conflict():
            await conn.execute(
                select(func.pg_advisory_xact_lock(tree, func.hashtext(str(ctx.tenant_id))))
            )
            loops = await leads_back(conn, ctx, spec, column, after)
        if loops:
            raise ValidationFailed.one(
                column, "cycle", f"would make this {spec.label} its own ancestor"
            )

    return check


async def leads_back(
    conn: AsyncConnection, ctx: RequestContext, spec: EntitySpec, column: str, row: Record
) -> bool:
    """Whether following `column` from `row` (recursive CTE; UNION stops on any other loop)
    reaches `row` again. The whole tenant's chain counts, also records the caller cannot see:
    the answer is only "a loop", never what the loop goes through."""
    table = spec.table
    start = select(literal(row[column], type_=table.c.id.type).label("id"))
    chain = start.cte("chain", recursive=True)
    step = select(table.c[column]).where(
        table.c.tenant_id == ctx.tenant_id,
        table.c.id == chain.c.id,
        table.c[column].is_not(None),
    )
    chain = chain.union(step)
    found = select(chain.c.id).where(chain.c.id == row["id"]).limit(1)
    return (await conn.execute(found)).first() is not None
