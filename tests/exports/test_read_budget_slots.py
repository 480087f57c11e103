"""The read budget's counter does not make one user's concurrent reads queue behind each other:
each database connection charges its own slot, and the usage is the sum of the slots."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.exports import budget
from backend.runtime import Services
from tests.conftest import new_tenant


async def _two_connections_in_different_slots(
    services: Services, stack: AsyncExitStack, tenant_id: Any
) -> tuple[AsyncConnection, AsyncConnection]:
    """Two open tenant transactions whose backends charge different slots."""
    seen: dict[int, AsyncConnection] = {}
    while len(seen) < 2:
        conn = await stack.enter_async_context(services.db.tenant_transaction(tenant_id))
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        seen.setdefault(pid % budget.SLOTS, conn)
    first, second = seen.values()
    return first, second


async def _charge(conn: AsyncConnection, tenant_id: Any, user_id: Any, rows: int) -> Any:
    params = {
        "tenant_id": tenant_id,
        "user_id": user_id,
        "rows": rows,
        "cells": rows,
        "dw": 3600,
        "drows": 10**9,
        "dcells": 10**9,
    }
    return (await conn.execute(budget._CHARGE_DURABLE, params)).one()


async def test_a_charge_in_flight_does_not_block_the_same_users_charge_on_another_connection(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "budget-slots")
    async with AsyncExitStack() as stack:
        holder, other = await _two_connections_in_different_slots(services, stack, admin.tenant_id)
        held = await _charge(holder, admin.tenant_id, admin.user_id, 7)
        assert held.rows == 7
        # One counter row per user made this wait for the holder's COMMIT (here: forever).
        await other.execute(text("SET LOCAL lock_timeout = '5s'"))
        charged = await asyncio.wait_for(
            _charge(other, admin.tenant_id, admin.user_id, 5), timeout=10
        )
        assert charged.rows == 5, "an uncommitted charge on another connection is not seen yet"
    # Both committed: the next charge counts every slot of the window.
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        total = await _charge(conn, admin.tenant_id, admin.user_id, 1)
    assert total.rows == 7 + 5 + 1


async def test_slots_of_an_earlier_window_do_not_count(
    services: Services, client: httpx.AsyncClient
) -> None:
    admin = await new_tenant(services, client, "budget-window")
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        await _charge(conn, admin.tenant_id, admin.user_id, 50)
        # Age every slot of this user into a window long gone.
        await conn.execute(
            text(
                "UPDATE bulk_read_usage SET window_start = window_start - interval '1 day'"
                " WHERE tenant_id = :t AND user_id = :u"
            ),
            {"t": admin.tenant_id, "u": admin.user_id},
        )
    async with services.db.tenant_transaction(admin.tenant_id) as conn:
        fresh = await _charge(conn, admin.tenant_id, admin.user_id, 3)
    assert fresh.rows == 3
