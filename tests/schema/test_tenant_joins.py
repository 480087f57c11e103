"""No statement in the service layer joins rows of two tenants: every join between tables
says `tenant_id = tenant_id` in its ON clause (on Citus, a join without the distribution
column cannot run on one node; on PostgreSQL, RLS would hide the mismatch, not prevent it).

Checked on the source: every SQLAlchemy `.join(table, on)` / `.outerjoin(table, on)` and every
JOIN ... ON in SQL text under backend/ (migrations aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from backend.db.citus import REFERENCE_TABLES

BACKEND = Path(__file__).parents[2] / "backend"
_SQL_JOIN = re.compile(
    r"\bJOIN\s+(\w+)(?:\s+(?:AS\s+)?\w+)?\s+ON\s+(.*?)(?=\bJOIN\b|\bWHERE\b|\)\s*,|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def _sources() -> list[Path]:
    return [p for p in BACKEND.rglob("*.py") if "migrations" not in p.parts]


def _core_joins_without_tenant(path: Path, root: Path) -> list[str]:
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("join", "outerjoin")
            and len(node.args) >= 2
        ):
            continue
        on = ast.get_source_segment(source, node.args[1]) or ""
        if "tenant_id" not in on:
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def _sql_joins_without_tenant(path: Path, root: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table, on in _SQL_JOIN.findall(node.value):
                if table not in REFERENCE_TABLES and "tenant_id" not in on:
                    found.append(f"{path.relative_to(root)}:{node.lineno} JOIN {table}")
    return found


def test_every_join_in_the_service_layer_stays_within_one_tenant() -> None:
    offenders = []
    for path in _sources():
        offenders += _core_joins_without_tenant(path, BACKEND)
        offenders += _sql_joins_without_tenant(path, BACKEND)
    assert offenders == []


def test_the_check_sees_a_join_without_tenant_id(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "q = a.join(b, a.c.id == b.c.a_id)\n"
        "s = 'SELECT 1 FROM x JOIN y ON y.id = x.y_id WHERE true'\n"
        "ok = a.join(b, (a.c.tenant_id == b.c.tenant_id) & (a.c.id == b.c.a_id))\n"
        "t = 'SELECT 1 FROM x JOIN y ON y.tenant_id = x.tenant_id AND y.id = x.y_id'\n"
    )
    assert _core_joins_without_tenant(bad, tmp_path) == ["bad.py:1"]
    assert _sql_joins_without_tenant(bad, tmp_path) == ["bad.py:2 JOIN y"]
