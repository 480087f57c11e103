"""The CLI's own output stays human: ordinary commands print their result on stdout and keep
stderr for warnings and errors (no Alembic or Casbin INFO lines)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from tests.cli.test_cli import _env, run
from tests.conftest import PASSWORD, Cluster

NOISE = ("INFO", "alembic", "casbin", "Context impl", "Running upgrade")


def _assert_quiet(stderr: str) -> None:
    for word in NOISE:
        assert word.lower() not in stderr.lower(), stderr[-2000:]


def test_ordinary_commands_write_nothing_on_stderr(cluster: Cluster) -> None:
    slug = f"quiet-{uuid.uuid4().hex[:8]}"
    commands = [
        ["migrate"],
        [
            "tenant",
            "create",
            "--name",
            "Quiet Ltd",
            "--slug",
            slug,
            "--admin-email",
            f"admin@{slug}.example",
            "--admin-password",
            PASSWORD,
        ],
        [
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            f"rep@{slug}.example",
            "--password",
            PASSWORD,
        ],
        ["demo", "--slug", f"{slug}-demo", "--accounts", "1"],
        ["keys", "list"],
    ]
    for args in commands:
        result = run(args, _env(cluster))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip(), args
        assert result.stderr == "", (args, result.stderr[-2000:])


@pytest.mark.slow
def test_demo_on_a_fresh_data_dir_is_quiet() -> None:
    """The first `caravan demo` of a newcomer: embedded PostgreSQL created, every migration
    run, and still only the demo's own lines."""
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-quiet-"))
    result = run(["demo", "--accounts", "1"], _env(CARAVAN_DATA_DIR=str(data_dir)), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Demo tenant 'demo'" in result.stdout
    _assert_quiet(result.stderr)
