"""Row-level security, the lock that holds when code forgets: connecting straight to PostgreSQL
as the application role (and as the owner), no service layer in between."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from tests.conftest import Cluster, TenantUser

SET_TENANT = "select set_config('app.tenant_id', $1, true)"


def dsn(url: str) -> str:
    """An SQLAlchemy URL as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def app_conn(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(cluster.urls.app_url))
    yield conn
    await conn.close()


@pytest.fixture
async def owner_conn(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(cluster.urls.owner_url))
    yield conn
    await conn.close()


@dataclass(frozen=True)
class Rows:
    a: TenantUser
    b: TenantUser
    a_contacts: set[uuid.UUID]
    b_contacts: set[uuid.UUID]


@pytest.fixture(scope="module")
async def rows(client: httpx.AsyncClient, tenant_a: TenantUser, tenant_b: TenantUser) -> Rows:
    made: dict[str, set[uuid.UUID]] = {"a": set(), "b": set()}
    for key, user in (("a", tenant_a), ("b", tenant_b)):
        for n in range(3):
            response = await client.post(
                "/api/v1/contacts", json={"last_name": f"Rls{key}{n}"}, headers=user.headers
            )
            assert response.status_code == 201, response.text
            made[key].add(uuid.UUID(response.json()["id"]))
    return Rows(tenant_a, tenant_b, made["a"], made["b"])


async def _contacts_as(
    conn: asyncpg.Connection, tenant: uuid.UUID | str | None
) -> list[asyncpg.Record]:
    async with conn.transaction():
        if tenant is not None:
            await conn.execute(SET_TENANT, str(tenant))
        result: list[asyncpg.Record] = await conn.fetch("select * from contacts")
        return result


# -- what the app role sees --------------------------------------------------------------------
async def test_app_role_sees_only_the_tenant_it_set(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    seen = await _contacts_as(app_conn, rows.a.tenant_id)
    assert {r["tenant_id"] for r in seen} == {rows.a.tenant_id}
    ids = {r["id"] for r in seen}
    assert rows.a_contacts <= ids
    assert ids.isdisjoint(rows.b_contacts)
    # Even asking for B's rows by name, with A set, finds nothing.
    async with app_conn.transaction():
        await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
        count = await app_conn.fetchval(
            "select count(*) from contacts where tenant_id = $1", rows.b.tenant_id
        )
    assert count == 0


@pytest.mark.parametrize("tenant", [None, "", "00000000-0000-0000-0000-000000000000"])
async def test_app_role_without_a_tenant_sees_nothing(
    app_conn: asyncpg.Connection, rows: Rows, tenant: str | None
) -> None:
    assert await _contacts_as(app_conn, tenant) == []
    for table in ("accounts", "users", "refresh_tokens", "tenants"):
        async with app_conn.transaction():
            if tenant is not None:
                await app_conn.execute(SET_TENANT, tenant)
            assert await app_conn.fetchval(f"select count(*) from {table}") == 0  # noqa: S608


async def test_tenant_setting_does_not_outlive_its_transaction(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    assert await _contacts_as(app_conn, rows.a.tenant_id) != []
    assert await app_conn.fetchval("select current_setting('app.tenant_id', true)") == ""
    assert await _contacts_as(app_conn, None) == []


async def test_insert_for_another_tenant_fails_with_check(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    row_id = uuid.uuid4()
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
            await app_conn.execute(
                "insert into contacts (tenant_id, id, last_name, owner_id) values ($1, $2, $3, $4)",
                rows.b.tenant_id,
                row_id,
                "Planted",
                rows.b.user_id,
            )
    assert row_id not in {r["id"] for r in await _contacts_as(app_conn, rows.b.tenant_id)}


async def test_update_cannot_move_a_row_to_another_tenant(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    victim = next(iter(rows.a_contacts))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
            await app_conn.execute(
                "update contacts set tenant_id = $1 where id = $2", rows.b.tenant_id, victim
            )
    assert victim in {r["id"] for r in await _contacts_as(app_conn, rows.a.tenant_id)}


async def test_writes_with_a_tenant_set_cannot_reach_other_tenants_rows(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    before = await _contacts_as(app_conn, rows.b.tenant_id)
    async with app_conn.transaction():
        await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
        updated = await app_conn.execute(
            "update contacts set last_name = 'Defaced' where tenant_id = $1", rows.b.tenant_id
        )
        deleted = await app_conn.execute(
            "delete from contacts where tenant_id = $1", rows.b.tenant_id
        )
    assert (updated, deleted) == ("UPDATE 0", "DELETE 0")
    assert await _contacts_as(app_conn, rows.b.tenant_id) == before


# -- what the app role is -----------------------------------------------------------------------
async def test_app_role_is_neither_superuser_nor_bypassrls(app_conn: asyncpg.Connection) -> None:
    role = await app_conn.fetchrow(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = current_user"
    )
    assert role is not None
    assert dict(role) == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
    }


async def test_app_role_owns_no_table(app_conn: asyncpg.Connection) -> None:
    owned = await app_conn.fetch("select tablename from pg_tables where tableowner = current_user")
    assert owned == []
    contacts_owner = await app_conn.fetchval(
        "select tableowner from pg_tables where schemaname = 'public' and tablename = 'contacts'"
    )
    assert contacts_owner not in (None, await app_conn.fetchval("select current_user"))


@pytest.mark.parametrize(
    "statement",
    [
        "alter table contacts disable row level security",
        "alter table contacts no force row level security",
        "drop policy tenant_isolation on contacts",
        "create policy open_door on contacts using (true)",
        "alter table tenants disable row level security",
    ],
)
async def test_app_role_cannot_loosen_rls(app_conn: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
        await app_conn.execute(statement)


async def test_app_role_cannot_truncate(app_conn: asyncpg.Connection, rows: Rows) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await app_conn.execute("truncate contacts")
    assert len(await _contacts_as(app_conn, rows.a.tenant_id)) >= len(rows.a_contacts)


async def test_row_security_off_raises_instead_of_showing_rows(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    await app_conn.execute("set row_security = off")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await app_conn.fetch("select * from contacts")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
            await app_conn.fetch("select * from contacts")


async def test_app_role_cannot_become_the_owner(app_conn: asyncpg.Connection) -> None:
    owner = await app_conn.fetchval(
        "select tableowner from pg_tables where schemaname = 'public' and tablename = 'contacts'"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await app_conn.execute(f"set role {owner}")


async def test_app_role_cannot_create_objects(app_conn: asyncpg.Connection) -> None:
    # No CREATE on the schema: no SECURITY DEFINER function or view to tunnel through RLS.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await app_conn.execute("create view all_contacts as select * from contacts")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await app_conn.execute(
            "create function peek() returns bigint language sql security definer "
            "as $$ select count(*) from contacts $$"
        )


# -- tenants and the slug lookup ----------------------------------------------------------------
async def test_app_role_sees_only_its_own_tenant_row(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    async with app_conn.transaction():
        await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
        visible = await app_conn.fetch("select id from tenants")
        by_slug = await app_conn.fetch("select id from tenants where slug = $1", rows.b.slug)
        renamed = await app_conn.execute(
            "update tenants set name = 'Taken over' where id = $1", rows.b.tenant_id
        )
    assert [r["id"] for r in visible] == [rows.a.tenant_id]
    assert by_slug == []
    assert renamed == "UPDATE 0"
    async with app_conn.transaction():
        assert await app_conn.fetch("select id from tenants") == []


async def test_app_role_cannot_create_a_tenant_row_for_another_id(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with app_conn.transaction():
            await app_conn.execute(SET_TENANT, str(rows.a.tenant_id))
            await app_conn.execute(
                "insert into tenants (id, name, slug) values ($1, 'Rogue', $2)",
                uuid.uuid4(),
                f"rogue-{uuid.uuid4().hex[:8]}",
            )


async def test_tenant_id_for_slug_works_for_the_app_role(
    app_conn: asyncpg.Connection, rows: Rows
) -> None:
    lookup = "select tenant_id_for_slug($1)"
    assert await app_conn.fetchval(lookup, rows.a.slug) == rows.a.tenant_id
    assert await app_conn.fetchval(lookup, rows.b.slug) == rows.b.tenant_id
    assert await app_conn.fetchval(lookup, f"missing-{uuid.uuid4().hex[:8]}") is None
    # It answers one slug with one id and nothing more: no pattern matching.
    assert await app_conn.fetchval(lookup, "%") is None


# -- the owner is held by FORCE too -------------------------------------------------------------
async def test_owner_is_subject_to_forced_rls(owner_conn: asyncpg.Connection, rows: Rows) -> None:
    async with owner_conn.transaction():
        assert await owner_conn.fetchval("select count(*) from contacts") == 0
    seen = await _contacts_as(owner_conn, rows.b.tenant_id)
    assert {r["tenant_id"] for r in seen} == {rows.b.tenant_id}
    assert rows.b_contacts <= {r["id"] for r in seen}
