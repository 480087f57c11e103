"""How the schema distributes on Citus: every tenant table by `tenant_id`, co-located with
`users`, and the few global tables as reference tables (copied to every node).

`tests/schema/test_citus_ready.py` checks the migrated catalog against this, and that the
checked-in `infra/citus/distribute.sql` is what `python -m backend.db.citus` prints.
"""

from __future__ import annotations

from backend.db.models import TENANT_TABLES, Base

# Global tables: no tenant data (or the tenants themselves), small, read by every node.
REFERENCE_TABLES = (
    "tenants",
    "signing_keys",  # the token signing keys, shared by every tenant
    "token_revocations",  # ids and times of revoked sessions and tokens, no tenant data
    "auth_throttle",  # sign-in attempt counters by hashed address and account
)

_HEADER = """\
-- Distribute Caravan's schema on a Citus cluster (generated: python -m backend.db.citus).
-- Run once as the database owner on the coordinator, after `caravan migrate`, before any
-- tenant data is loaded (or Citus copies existing rows into the shards as it goes).
-- Every tenant table is distributed by tenant_id and co-located, so each tenant's rows, keys
-- and links live on one node; the global tables become reference tables.
"""


def distribution_script() -> str:
    """The SQL, in foreign-key order (a table's targets are distributed before it)."""
    order = [t.name for t in Base.metadata.sorted_tables]
    lines = [_HEADER, "BEGIN;"]
    for name in order:
        if name in REFERENCE_TABLES:
            lines.append(f"SELECT create_reference_table('{name}');")
    anchor = "users"  # first: every other tenant table is co-located with it
    lines.append(f"SELECT create_distributed_table('{anchor}', 'tenant_id');")
    for name in order:
        if name in TENANT_TABLES and name != anchor:
            colocated = f"colocate_with => '{anchor}'"
            lines.append(f"SELECT create_distributed_table('{name}', 'tenant_id', {colocated});")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(distribution_script(), end="")
