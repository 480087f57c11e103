"""The `caravan` command, run as a user would: a subprocess with only environment variables."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster, sign_in

CARAVAN = [sys.executable, "-m", "backend"]


def _env(cluster: Cluster | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    if cluster is not None:
        env.update(
            CARAVAN_DATABASE_URL=cluster.urls.app_url,
            CARAVAN_MIGRATION_DATABASE_URL=cluster.urls.owner_url,
            CARAVAN_DATA_DIR=str(cluster.data_dir),
        )
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARAVAN, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _post_json(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get_json(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_migrate_is_idempotent(cluster: Cluster) -> None:
    result = run(["migrate"], _env(cluster))
    assert result.returncode == 0, result.stderr
    assert "migrations are current" in result.stdout


def test_tenant_and_user_create_print_json(cluster: Cluster) -> None:
    slug = f"cli-{os.getpid()}"
    created = run(
        [
            "tenant",
            "create",
            "--name",
            "CLI Ltd",
            "--slug",
            slug,
            "--admin-email",
            "Boss@CLI.example",
            "--admin-password",
            "long enough pw",
        ],
        _env(cluster),
    )
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["slug"] == slug
    assert len(body["tenant_id"]) == 36 and len(body["admin_user_id"]) == 36

    user = run(
        [
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            "rep@cli.example",
            "--password",
            "another long pw",
        ],
        _env(cluster),
    )
    assert user.returncode == 0, user.stderr
    assert json.loads(user.stdout)["email"] == "rep@cli.example"

    duplicate = run(
        [
            "tenant",
            "create",
            "--name",
            "Again",
            "--slug",
            slug,
            "--admin-email",
            "x@cli.example",
            "--admin-password",
            "long enough pw",
        ],
        _env(cluster),
    )
    assert duplicate.returncode == 2
    assert "duplicate (slug)" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [
                "--slug",
                "Bad Slug",
                "--admin-email",
                "a@b.example",
                "--admin-password",
                "long enough pw",
            ],
            "invalid_slug (slug)",
        ),
        (
            [
                "--slug",
                "okslug",
                "--admin-email",
                "not-an-email",
                "--admin-password",
                "long enough pw",
            ],
            "invalid_email (email)",
        ),
        (
            ["--slug", "okslug2", "--admin-email", "a@b.example", "--admin-password", "short"],
            "weak_password (password)",
        ),
    ],
)
def test_tenant_create_rejects_bad_input(cluster: Cluster, args: list[str], expected: str) -> None:
    result = run(["tenant", "create", "--name", "X", *args], _env(cluster))
    assert result.returncode == 2
    assert expected in result.stderr


def test_user_create_in_unknown_tenant_fails(cluster: Cluster) -> None:
    result = run(
        [
            "user",
            "create",
            "--tenant",
            "no-such-tenant",
            "--email",
            "a@b.example",
            "--password",
            "long enough pw",
        ],
        _env(cluster),
    )
    assert result.returncode == 2
    assert "not_found (tenant)" in result.stderr


def test_production_refuses_default_secrets(tmp_path: Path) -> None:
    result = run(["serve"], _env(CARAVAN_ENV="production", CARAVAN_DATA_DIR=str(tmp_path)))
    assert result.returncode == 78
    # The signing key ring lives in the database, sealed with CARAVAN_SECRET_KEY (the first key
    # may still come from CARAVAN_SIGNING_KEY, but it is no longer required).
    for needed in ("CARAVAN_DATABASE_URL", "CARAVAN_SECRET_KEY", "CARAVAN_PUBLIC_URL"):
        assert needed in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_on_embedded_defaults_from_an_empty_data_dir() -> None:
    """README command 1, end to end: no database configured, a fresh data dir."""
    data_dir = Path(tempfile.mkdtemp(prefix="caravan-serve-"))
    env = _env(CARAVAN_DATA_DIR=str(data_dir))
    made = run(
        [
            "tenant",
            "create",
            "--name",
            "Embedded",
            "--slug",
            "embedded",
            "--admin-email",
            "admin@embedded.example",
            "--admin-password",
            "long enough pw",
            "--no-admin-mfa",
        ],
        env,
    )
    assert made.returncode == 0, made.stderr
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [*CARAVAN, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status, _ = _get_json(f"{base}/ready")
            except OSError:
                time.sleep(0.2)
        assert status == 200
        code, tokens = _post_json(
            f"{base}/auth/sign-in",
            {"tenant": "embedded", "email": "admin@embedded.example", "password": "long enough pw"},
        )
        assert code == 200
        code, page = _get_json(f"{base}/api/v1/contacts", tokens["access_token"])
        assert code == 200 and page == {"items": [], "next": None}
        # The served answers carry no product banner (uvicorn's Server header is off).
        with urllib.request.urlopen(f"{base}/health", timeout=10) as health:
            assert health.headers.get("server") is None
            assert health.headers.get("x-content-type-options") == "nosniff"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert server.returncode == 0, (data_dir / "serve.log").read_text()[-2000:]
    served = (data_dir / "serve.log").read_text()
    # No access log unless --access-log: the requests above left no line each.
    assert "GET /api/v1/contacts" not in served
    # One ready line names the embedded database and the URL; no Alembic or Casbin chatter.
    assert f"ready: {base} " in served
    assert f"embedded PostgreSQL in {data_dir.resolve() / 'postgres'}" in served
    assert "alembic" not in served and "casbin" not in served
    # The server stopped the embedded PostgreSQL it started.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert oct((data_dir / "secrets").stat().st_mode & 0o777) == "0o700"


async def test_demo_records_carry_history_on_the_cli_channel(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    slug = f"demoh-{os.getpid()}"
    made = run(
        ["demo", "--slug", slug, "--password", "long enough pw", "--accounts", "1"], _env(cluster)
    )
    assert made.returncode == 0, made.stderr
    assert f"Demo tenant '{slug}': 1 accounts" in made.stdout
    token = (await sign_in(client, slug, "admin@demo.example", "long enough pw"))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    history = await client.get("/api/v1/history", params={"entity": "account"}, headers=headers)
    assert history.status_code == 200, history.text
    items = history.json()["items"]
    assert [(h["event"], h["channel"]) for h in items] == [("create", "cli")]
