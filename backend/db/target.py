"""Where the database is: the configured server, or the embedded one under the data dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from backend.db.embedded import APP_ROLE, EmbeddedPostgres
from backend.settings import Settings


@dataclass
class DatabaseTarget:
    app_url: str
    owner_url: str | None
    app_role: str
    embedded: EmbeddedPostgres | None = None

    def where(self) -> str:
        """Where the database is, for a person to read: never with a password in it."""
        url = make_url(self.app_url)
        if self.embedded is not None:
            cluster = self.embedded.cluster_dir
            here = Path.cwd()
            shown = f"./{cluster.relative_to(here)}" if cluster.is_relative_to(here) else cluster
            return f"embedded PostgreSQL in {shown} (127.0.0.1:{url.port})"
        bare = URL.create(
            url.drivername, url.username, None, url.host, url.port, url.database, url.query
        )
        return bare.render_as_string(hide_password=False)

    def release(self) -> None:
        """Stop the embedded server if this process started it."""
        if self.embedded is not None and self.embedded.started_here:
            self.embedded.stop()


async def resolve_database(settings: Settings) -> DatabaseTarget:
    if settings.database_url is not None:
        return DatabaseTarget(
            app_url=settings.database_url,
            owner_url=settings.migration_database_url or settings.database_url,
            app_role=settings.app_role,
        )
    embedded = EmbeddedPostgres(settings.data_dir, settings.pg_bin_dir)
    port = embedded.start()
    try:
        urls = await embedded.bootstrap(port)
    except BaseException:
        if embedded.started_here:
            embedded.stop()
        raise
    return DatabaseTarget(
        app_url=urls.app_url, owner_url=urls.owner_url, app_role=APP_ROLE, embedded=embedded
    )
