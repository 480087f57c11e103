"""One typed Settings object, read once from CARAVAN_* environment variables.

Development (the default) runs on embedded defaults: an embedded PostgreSQL under the data
directory and a signing key generated into it. Production refuses to start unless every
secret is supplied explicitly (see `Settings.check_production`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from backend.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_ISSUER = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_AUDIENCE = "caravan-api"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def local_url(host: str, port: int) -> str:
    """The URL a local client reaches `caravan serve` at, bound to host:port (a wildcard bind
    is reached on the loopback address)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding to it
        host = DEFAULT_HOST
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _public_url(env: Mapping[str, str]) -> str | None:
    """CARAVAN_PUBLIC_URL (CARAVAN_ISSUER, its older name, is still read): scheme, host and an
    optional port, without a trailing slash, since the issuer is compared byte for byte."""
    public = (env.get("CARAVAN_PUBLIC_URL") or "").strip()
    legacy = (env.get("CARAVAN_ISSUER") or "").strip()
    if public and legacy and public.rstrip("/") != legacy.rstrip("/"):
        raise ConfigurationError(
            "CARAVAN_PUBLIC_URL and CARAVAN_ISSUER differ; set only CARAVAN_PUBLIC_URL"
        )
    raw = public or legacy
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(
            "CARAVAN_PUBLIC_URL must be an http(s) URL such as https://crm.example.com, "
            f"got {raw!r}"
        )
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    data_dir: Path = field(default_factory=lambda: Path("var"))
    # The app role's URL. Unset: the embedded PostgreSQL under data_dir is used.
    database_url: str | None = None
    # The owner role's URL, used by migrations. Defaults to database_url when unset
    # (fine only where the operator accepts one role; production requires both).
    migration_database_url: str | None = None
    # Name of the role the application connects as (migrations grant it table rights).
    app_role: str = "caravan_app"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # The URL clients reach this service at (CARAVAN_PUBLIC_URL). Unset: the address `serve`
    # is bound to. The token issuer and every discovery URL follow it (see `issuer`).
    public_url: str | None = None
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    access_token_ttl_seconds: int = 600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # A private EC P-256 JWK (JSON): the FIRST signing key, imported into the database key ring
    # when the ring is empty. Unset: development imports a key file generated under data_dir,
    # production generates the first key in the database. Rotate with `caravan keys rotate`.
    signing_key: str | None = None
    # 32 random bytes, base64url: encrypts secrets the database holds (private signing keys,
    # TOTP seeds). Unset in development: generated under data_dir/secrets.
    secret_key: str | None = None
    # Clock skew tolerated when checking token times (exp, nbf, iat).
    token_leeway_seconds: int = 30
    pool_size: int = 10
    # Connections opened beyond pool_size under load (0: never more than pool_size).
    pool_max_overflow: int = 5
    pg_bin_dir: Path | None = None
    # database_url points at PgBouncer in transaction mode: no statement caches (unnamed
    # prepared statements, each inside its transaction) and no session-level startup settings.
    db_pgbouncer: bool = False
    # A direct (session) connection for LISTEN/NOTIFY (policy versions, token revocations).
    # Unset: database_url, unless that is PgBouncer; then nothing listens and every process
    # reads the policy version per transaction and polls revocations every second.
    listen_database_url: str | None = None
    # The audit chain inside `caravan serve`: seal new history/audit rows every N seconds, and
    # write signed chain-head checkpoints every M seconds (0 turns either off).
    seal_interval_seconds: int = 5
    # Seconds between SLA breach checks inside `caravan serve` (0: off).
    sla_check_interval_seconds: int = 60
    checkpoint_interval_seconds: int = 300
    # Encrypted backups (backend/backups). Unset URL: $CARAVAN_DATA_DIR/backups; s3://bucket/prefix
    # for object storage (endpoint override for S3-compatible servers). Enabled: None means on in
    # embedded mode, off otherwise. A KMS key id wraps data keys with AWS KMS instead of a key file.
    backup_url: str | None = None
    backup_s3_endpoint: str | None = None
    backup_enabled: bool | None = None
    backup_interval_seconds: int = 3600
    # Scheduled runs also take one backup per tenant (for single-tenant restores).
    backup_tenants: bool = False
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 12
    backup_retention_days: int | None = None
    backup_lock_mode: str = "COMPLIANCE"
    backup_kms_key_id: str | None = None
    # A role that reads every tenant (BYPASSRLS or superuser) for pg_dump/pg_restore; unset in
    # embedded mode: the embedded cluster's superuser.
    backup_database_url: str | None = None
    # Behind a TLS-terminating proxy: believe its X-Forwarded-Proto (for HSTS). Off by default:
    # without a proxy in front, any client could send that header.
    trust_proxy: bool = False
    # The bearer token a Prometheus scraper presents at /metrics. Unset: only loopback callers
    # (and none at all behind a trusted proxy, where every caller looks like the proxy).
    metrics_token: str | None = None

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def backups_scheduled(self) -> bool:
        """Scheduled backups: on by default with the embedded database, else when enabled."""
        if self.backup_enabled is None:
            return self.embedded
        return self.backup_enabled

    def serving_on(self, host: str, port: int) -> Settings:
        """These settings for a server bound to host:port: without a configured public URL,
        the issuer (and so every discovery URL) is that address."""
        return replace(self, host=host, port=port, issuer=self.public_url or local_url(host, port))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        pg_bin = env.get("CARAVAN_PG_BIN_DIR")
        environment = env.get("CARAVAN_ENV", "development")
        if environment not in ("development", "production", "test"):
            raise ConfigurationError(
                f"CARAVAN_ENV must be development, production or test, got {environment!r}"
            )
        host = env.get("CARAVAN_HOST", DEFAULT_HOST)
        port = _int(env, "CARAVAN_PORT", DEFAULT_PORT)
        public_url = _public_url(env)
        settings = cls(
            environment=environment,
            data_dir=Path(env.get("CARAVAN_DATA_DIR", "var")),
            database_url=env.get("CARAVAN_DATABASE_URL") or None,
            migration_database_url=env.get("CARAVAN_MIGRATION_DATABASE_URL") or None,
            app_role=env.get("CARAVAN_APP_ROLE", "caravan_app"),
            host=host,
            port=port,
            public_url=public_url,
            issuer=public_url or local_url(host, port),
            audience=env.get("CARAVAN_AUDIENCE", DEFAULT_AUDIENCE),
            access_token_ttl_seconds=_int(env, "CARAVAN_ACCESS_TOKEN_TTL", 600),
            refresh_token_ttl_seconds=_int(env, "CARAVAN_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            signing_key=env.get("CARAVAN_SIGNING_KEY") or None,
            secret_key=env.get("CARAVAN_SECRET_KEY") or None,
            token_leeway_seconds=_int(env, "CARAVAN_TOKEN_LEEWAY", 30),
            pool_size=_int(env, "CARAVAN_DB_POOL_SIZE", 10),
            pool_max_overflow=_int(env, "CARAVAN_DB_POOL_MAX_OVERFLOW", 5),
            pg_bin_dir=Path(pg_bin) if pg_bin else None,
            db_pgbouncer=bool(_bool(env, "CARAVAN_DB_PGBOUNCER")),
            listen_database_url=env.get("CARAVAN_LISTEN_DATABASE_URL") or None,
            seal_interval_seconds=_int(env, "CARAVAN_SEAL_INTERVAL", 5),
            sla_check_interval_seconds=_int(env, "CARAVAN_SLA_CHECK_INTERVAL", 60),
            checkpoint_interval_seconds=_int(env, "CARAVAN_CHECKPOINT_INTERVAL", 300),
            backup_url=env.get("CARAVAN_BACKUP_URL") or None,
            backup_s3_endpoint=env.get("CARAVAN_BACKUP_S3_ENDPOINT") or None,
            backup_enabled=_bool(env, "CARAVAN_BACKUP_ENABLED"),
            backup_interval_seconds=_int(env, "CARAVAN_BACKUP_INTERVAL_SECONDS", 3600),
            backup_tenants=bool(_bool(env, "CARAVAN_BACKUP_TENANTS")),
            backup_keep_daily=_int(env, "CARAVAN_BACKUP_KEEP_DAILY", 7),
            backup_keep_weekly=_int(env, "CARAVAN_BACKUP_KEEP_WEEKLY", 4),
            backup_keep_monthly=_int(env, "CARAVAN_BACKUP_KEEP_MONTHLY", 12),
            backup_retention_days=_int(env, "CARAVAN_BACKUP_RETENTION_DAYS", 0) or None,
            backup_lock_mode=env.get("CARAVAN_BACKUP_LOCK_MODE", "COMPLIANCE").upper(),
            backup_kms_key_id=env.get("CARAVAN_BACKUP_KMS_KEY_ID") or None,
            backup_database_url=env.get("CARAVAN_BACKUP_DATABASE_URL") or None,
            trust_proxy=bool(_bool(env, "CARAVAN_TRUST_PROXY")),
            metrics_token=env.get("CARAVAN_METRICS_TOKEN") or None,
        )
        settings.check_production()
        return settings

    def check_production(self) -> None:
        """Refuse to run in production on development defaults or without secrets."""
        if not self.is_production:
            return
        problems = []
        if self.database_url is None:
            problems.append("CARAVAN_DATABASE_URL is required (no embedded database in production)")
        if self.migration_database_url is None:
            problems.append("CARAVAN_MIGRATION_DATABASE_URL (the owner role) is required")
        if self.database_url and self.database_url == self.migration_database_url:
            problems.append("the app role and the owner role must differ")
        if self.secret_key is None:
            problems.append(
                "CARAVAN_SECRET_KEY is required (it encrypts signing keys and MFA secrets)"
            )
        if self.public_url is None:
            problems.append("CARAVAN_PUBLIC_URL must be set to the public URL of this service")
        elif not self.public_url.startswith("https://"):
            problems.append("CARAVAN_PUBLIC_URL must be an https URL (OAuth requires TLS)")
        if problems:
            raise ConfigurationError("refusing to start in production: " + "; ".join(problems))
