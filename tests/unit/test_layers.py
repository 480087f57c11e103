"""The record layer stays below the packages built on it: backend/records imports nothing from
backend/exports (the read budget reaches it as a read hook), and the server's services install
that hook."""

from __future__ import annotations

import ast
from pathlib import Path

from backend.exports.read_hook import READ_BUDGET, charge_read_budget
from backend.records.hooks import read_hook
from backend.runtime import Services

RECORDS = Path(__file__).resolve().parents[2] / "backend" / "records"
FORBIDDEN = "backend.exports"


def imported_modules(source: str, package: str = "backend.records") -> set[str]:
    """Every module `source` imports, absolute or relative (as seen from `package`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found.add(base)
            # `from backend import exports` imports the package itself.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def reaches(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_the_check_sees_every_form_of_import() -> None:
    for source in (
        "import backend.exports.budget",
        "from backend.exports.budget import charge_bulk_read",
        "from backend import exports",
        "from ..exports import budget",
        "def f():\n    from backend.exports import budget\n",
    ):
        assert reaches(imported_modules(source), FORBIDDEN), source
    assert not reaches(imported_modules("from backend.export_rules import x"), FORBIDDEN)
    assert not reaches(imported_modules("from .hooks import BulkRead"), FORBIDDEN)


def test_records_imports_nothing_from_exports() -> None:
    files = sorted(RECORDS.glob("*.py"))
    assert any(f.name == "service.py" for f in files)  # the right folder
    offenders = {
        f.name: found
        for f in files
        if (found := reaches(imported_modules(f.read_text()), FORBIDDEN))
    }
    assert offenders == {}


def test_the_services_install_the_read_budget(services: Services) -> None:
    assert read_hook(READ_BUDGET) is charge_read_budget
