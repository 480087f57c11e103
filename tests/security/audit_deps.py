"""Dependency audit: every package pinned in uv.lock against known vulnerabilities.

    uv run python -m tests.security.audit_deps            # pip-audit, PyPI's vulnerability data
    uv run python -m tests.security.audit_deps --service osv

Exports the lock file (all groups, exact pins, no hashes) and runs pip-audit (a pinned dev
dependency) on it without resolving anything again. Exit status 0 only when every pinned
package was audited and none has a known vulnerability: a package the service could not look up
counts as a failure, because "not looked up" is not "not vulnerable". Prints
`vulnerable_packages: N` for the security figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def export_lock(target: Path) -> None:
    subprocess.run(
        [
            "uv", "export", "--locked", "--all-groups", "--no-hashes", "--no-emit-project",
            "--format", "requirements-txt", "--output-file", str(target),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )  # fmt: skip


def audit(requirements: Path, service: str) -> dict[str, object]:
    result = subprocess.run(
        [
            sys.executable, "-m", "pip_audit", "--requirement", str(requirements),
            "--no-deps", "--disable-pip", "--progress-spinner", "off",
            "--vulnerability-service", service, "--format", "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    # pip-audit exits 1 when it finds something; its JSON report is on stdout either way.
    if not result.stdout.strip():
        raise SystemExit(f"pip-audit gave no report (exit {result.returncode}):\n{result.stderr}")
    report: dict[str, object] = json.loads(result.stdout)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv", "esms"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        export_lock(requirements)
        report = audit(requirements, args.service)
    dependencies = report.get("dependencies", [])
    assert isinstance(dependencies, list)
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        fixes = sorted({f for v in dep["vulns"] for f in v.get("fix_versions", [])})
        print(f"VULNERABLE {dep['name']} {dep['version']}: {ids} (fixed in {fixes or '?'})")
    for dep in skipped:
        print(f"NOT AUDITED {dep['name']} {dep.get('version', '')}: {dep['skip_reason']}")
    print(f"audited: {len(dependencies) - len(skipped)} of {len(dependencies)} pinned packages")
    print(f"vulnerable_packages: {len(vulnerable)}")
    return 1 if vulnerable or skipped or not dependencies else 0


if __name__ == "__main__":
    raise SystemExit(main())
