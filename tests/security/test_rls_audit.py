"""RLS audit against the real catalogue of the migrated database: nothing here lists tables by
hand, so a table, role, function or view added later is audited the moment it exists.

- every table with a tenant_id column: row-level security ENABLED and FORCED, and every policy
  on it keyed on app.tenant_id, for reads (USING) and writes (WITH CHECK);
- no role but a superuser has BYPASSRLS, and the only superuser is the bootstrap one;
- no SECURITY DEFINER function the app role may execute, unless allow-listed below with the
  reason it cannot reach another tenant's rows;
- every view runs with the caller's rights (security_invoker), and no materialized view (which
  RLS never filters) is readable by the app role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from backend.db.embedded import APP_ROLE, OWNER_ROLE, SUPERUSER
from tests.conftest import Cluster
from tests.security.figures import count

TENANT_SETTING = "current_setting('app.tenant_id'"

# SECURITY DEFINER functions the app role may call, and why none of them opens another tenant.
DEFINER_ALLOWED: dict[str, str] = {
    "tenant_id_for_slug(p_slug text)": (
        "sign-in must find a tenant before one is set; it returns only that tenant's id and "
        "sets nothing, so no row of any tenant becomes visible"
    ),
    "caravan_begin_tenant(p_tenant uuid)": (
        "sets app.tenant_id (which the app role may set itself with set_config) and returns "
        "that tenant's policy version; it reads no other tenant's rows"
    ),
    "caravan_audit_tenants()": (
        "the sealer and verifier walk tenants one by one; it returns ids and slugs only, never "
        "a tenant's rows, which stay behind the tenant's own RLS"
    ),
    "caravan_erase_history(p_entity text, p_record uuid)": (
        "erases values only WHERE tenant_id = app.tenant_id and refuses to run with no tenant "
        "set, so it cannot touch another tenant's history"
    ),
    "caravan_prune_audit(p_history_through bigint, p_events_through bigint, "
    "p_seals_through bigint)": (
        "deletes only the current tenant's (app.tenant_id) sealed rows past its retention, and "
        "refuses with no tenant set"
    ),
}


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def conn(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn(cluster.urls.owner_url))
    yield connection
    await connection.close()


async def test_every_tenant_table_has_forced_rls_keyed_on_the_tenant(
    conn: asyncpg.Connection,
) -> None:
    tables = await conn.fetch(
        """
        select c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p')
           and exists (select 1 from pg_attribute a
                        where a.attrelid = c.oid and a.attname = 'tenant_id'
                          and not a.attisdropped)
         order by c.relname
        """
    )
    policies = await conn.fetch(
        "select tablename, policyname, permissive, cmd, qual, with_check "
        "from pg_policies where schemaname = 'public'"
    )
    violations: list[str] = []
    for table in tables:
        name = table["relname"]
        if not table["relrowsecurity"]:
            violations.append(f"{name}: RLS not enabled")
        if not table["relforcerowsecurity"]:
            violations.append(f"{name}: RLS not forced")
        own = [p for p in policies if p["tablename"] == name]
        if not own:
            violations.append(f"{name}: no policy")
        for policy in own:
            # A permissive policy not keyed on the tenant would OR an open door onto the others.
            if TENANT_SETTING not in (policy["qual"] or ""):
                violations.append(f"{name}.{policy['policyname']}: USING not keyed on tenant")
            if policy["cmd"] in ("ALL", "INSERT", "UPDATE") and TENANT_SETTING not in (
                policy["with_check"] or policy["qual"] or ""
            ):
                violations.append(f"{name}.{policy['policyname']}: WITH CHECK not on tenant")
    count("rls_tables_checked", len(tables))
    count("rls_violations", len(violations))
    assert len(tables) >= 20, [t["relname"] for t in tables]  # the audit really saw the schema
    assert violations == []


async def test_the_tenants_table_shows_a_transaction_only_its_own_tenant(
    conn: asyncpg.Connection,
) -> None:
    """tenants has no tenant_id (its id is the tenant): RLS on, policy on its id."""
    enabled = await conn.fetchval(
        "select relrowsecurity from pg_class where oid = 'public.tenants'::regclass"
    )
    quals = await conn.fetch(
        "select qual, with_check from pg_policies where schemaname = 'public' "
        "and tablename = 'tenants'"
    )
    count("rls_tables_checked")
    bad = int(not enabled) + sum(
        TENANT_SETTING not in (q["qual"] or "") or TENANT_SETTING not in (q["with_check"] or "")
        for q in quals
    )
    count("rls_violations", bad + int(not quals))
    assert enabled
    assert quals
    assert bad == 0


async def test_no_role_but_the_bootstrap_superuser_bypasses_rls(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(
        "select rolname, rolsuper, rolbypassrls from pg_roles "
        "where (rolsuper or rolbypassrls) and rolname not like 'pg\\_%'"
    )
    powerful = {r["rolname"]: (r["rolsuper"], r["rolbypassrls"]) for r in rows}
    bypassing = [name for name, (sup, bypass) in powerful.items() if bypass and not sup]
    count("rls_violations", len(bypassing) + len(set(powerful) - {SUPERUSER}))
    assert bypassing == []
    assert set(powerful) == {SUPERUSER}
    ours = await conn.fetch(
        "select rolname, rolsuper, rolbypassrls from pg_roles where rolname = any($1::text[])",
        [APP_ROLE, OWNER_ROLE],
    )
    assert {r["rolname"]: (r["rolsuper"], r["rolbypassrls"]) for r in ours} == {
        APP_ROLE: (False, False),
        OWNER_ROLE: (False, False),
    }


async def test_no_security_definer_function_opens_another_tenant_to_the_app_role(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(
        """
        select p.proname || '(' || pg_get_function_arguments(p.oid) || ')' as signature
          from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
         where p.prosecdef
           and n.nspname not in ('pg_catalog', 'information_schema')
           and has_function_privilege($1, p.oid, 'EXECUTE')
         order by 1
        """,
        APP_ROLE,
    )
    callable_by_app = {r["signature"] for r in rows}
    unexplained = sorted(callable_by_app - set(DEFINER_ALLOWED))
    count("rls_violations", len(unexplained))
    assert unexplained == []
    # The allow-list stays honest: no entry for a function that no longer exists.
    assert sorted(set(DEFINER_ALLOWED) - callable_by_app) == []


async def test_definer_functions_refuse_to_work_without_a_tenant(cluster: Cluster) -> None:
    """The allow-list's reasons, tried as the app role: no tenant set, no rows touched."""
    app = await asyncpg.connect(dsn(cluster.urls.app_url))
    try:
        for call in (
            "select caravan_erase_history('contact', gen_random_uuid())",
            "select caravan_prune_audit(1, 1, 0)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no tenant set"):
                await app.fetchval(call)
    finally:
        await app.close()


async def test_views_run_with_the_callers_rights(conn: asyncpg.Connection) -> None:
    views = await conn.fetch(
        """
        select c.relname, c.relkind, coalesce(c.reloptions, '{}') as options,
               has_table_privilege($1, c.oid, 'SELECT') as readable
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('v', 'm')
        """,
        APP_ROLE,
    )
    bad = [
        v["relname"]
        for v in views
        if (v["relkind"] == "v" and "security_invoker=true" not in v["options"])
        or (v["relkind"] == "m" and v["readable"])
    ]
    count("rls_violations", len(bad))
    assert bad == []
