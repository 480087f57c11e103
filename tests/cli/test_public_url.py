"""The issuer and every discovery URL follow the public URL: CARAVAN_PUBLIC_URL, or else the
address `caravan serve` is bound to (never a hard-coded port)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from backend.errors import ConfigurationError
from backend.settings import Settings
from tests.cli.test_cli import _env, run
from tests.conftest import PASSWORD, Cluster
from tests.reliability.processes import serve

URL_KEYS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
)


def _discovery(port: int) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def _tenant(cluster: Cluster, slug: str) -> None:
    made = run(
        [
            "tenant",
            "create",
            "--name",
            "Public URL Ltd",
            "--slug",
            slug,
            "--admin-email",
            f"admin@{slug}.example",
            "--admin-password",
            PASSWORD,
            "--no-admin-mfa",
        ],
        _env(cluster),
    )
    assert made.returncode == 0, made.stderr


@pytest.mark.parametrize("public_url", [None, "https://crm.example.test"])
def test_discovery_and_tokens_follow_the_public_url(
    cluster: Cluster, public_url: str | None
) -> None:
    slug = f"public-url-{'set' if public_url else 'bound'}"
    _tenant(cluster, slug)
    # Empty values count as unset, whatever the developer's shell exports.
    env = {"CARAVAN_PUBLIC_URL": public_url or "", "CARAVAN_ISSUER": ""}
    # The cluster's data dir: its secret key opens the signing keys the database holds.
    server = serve(slug, cluster.urls.app_url, cluster.data_dir, env)
    try:
        expected = public_url or f"http://127.0.0.1:{server.port}"
        discovery = _discovery(server.port)
        for key in URL_KEYS:
            assert discovery[key].startswith(expected + "/") or discovery[key] == expected, key
        assert discovery["issuer"] == expected
        assert ":8000" not in json.dumps(discovery)
        # The tokens it signs name the same issuer.
        signed_in = httpx.post(
            f"http://127.0.0.1:{server.port}/auth/sign-in",
            json={"tenant": slug, "email": f"admin@{slug}.example", "password": PASSWORD},
            timeout=30,
        )
        assert signed_in.status_code == 200, signed_in.text
        assert _claims(signed_in.json()["access_token"])["iss"] == expected
    finally:
        server.stop()
    # The startup line: the public URL, ready, and where the database is, without its password.
    log = server.log.read_text()
    ready = [line for line in log.splitlines() if "ready: " in line]
    assert len(ready) == 1, log[-2000:]
    assert expected in ready[0]
    assert f"listening on 127.0.0.1:{server.port}" in ready[0]
    database = make_url(cluster.urls.app_url)
    assert database.password and database.password not in log
    assert f"{database.host}:{database.port}/{database.database}" in ready[0]


def test_settings_read_the_public_url() -> None:
    bound = Settings.from_env({"CARAVAN_HOST": "0.0.0.0", "CARAVAN_PORT": "8123"})  # noqa: S104
    assert bound.issuer == "http://127.0.0.1:8123"
    assert bound.serving_on("127.0.0.1", 9001).issuer == "http://127.0.0.1:9001"
    configured = Settings.from_env({"CARAVAN_PUBLIC_URL": "https://crm.example.test/"})
    assert configured.issuer == "https://crm.example.test"  # compared byte for byte: no "/"
    assert configured.serving_on("127.0.0.1", 9001).issuer == "https://crm.example.test"
    # The older name still works; two different values are a mistake, not a choice.
    assert Settings.from_env({"CARAVAN_ISSUER": "https://old.example"}).issuer == (
        "https://old.example"
    )
    with pytest.raises(ConfigurationError, match="differ"):
        Settings.from_env(
            {"CARAVAN_PUBLIC_URL": "https://a.example", "CARAVAN_ISSUER": "https://b.example"}
        )
    for bad in ("crm.example.test", "ftp://crm.example.test", "https://crm.example.test/?x=1"):
        with pytest.raises(ConfigurationError, match="CARAVAN_PUBLIC_URL"):
            Settings.from_env({"CARAVAN_PUBLIC_URL": bad})


def test_production_needs_an_https_public_url(tmp_path: Path) -> None:
    env = _env(
        CARAVAN_ENV="production",
        CARAVAN_DATA_DIR=str(tmp_path),
        CARAVAN_PUBLIC_URL="http://crm.example.test",
    )
    result = run(["serve"], env)
    assert result.returncode == 78
    assert "CARAVAN_PUBLIC_URL must be an https URL" in result.stderr
