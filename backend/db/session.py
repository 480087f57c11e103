"""The database handle and tenant-scoped transactions: the only way code reaches tenant rows.

Every transaction sets `app.tenant_id` with set_config(..., true) in the same round trip as its
BEGIN (one simple-protocol query, see `TenantConnection`), so it is transaction-local (safe
behind PgBouncer in transaction mode) and gone when the connection returns to the pool.
Row-level security policies compare rows against it. The tenant's policy version comes from a
per-process memory kept fresh by NOTIFY (backend/db/policy_versions.py), read in the
transaction only when that memory cannot be trusted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from backend.db.policy_versions import CHANNEL, PolicyVersions
from backend.errors import Forbidden
from backend.idempotency.inflight import mark_applied

log = logging.getLogger("caravan.db")
# What to do after a transaction, once its connection is released; given whether it rolled back.
AfterRelease = Callable[[bool], Awaitable[None]]
# Sets app.tenant_id for this transaction and returns the tenant's policy version.
_BEGIN_TENANT = text("select caravan_begin_tenant(:tenant_id)")
_NOTIFY = text(f"select pg_notify('{CHANNEL}', :tenant_id)")
POLICY_VERSION = "caravan.policy_version"
# Items queued on a connection for the database's observers, handed over once it commits.
_AFTER_COMMIT = "caravan.after_commit"
CommitObserver = Callable[[list[Any]], None]


def after_commit(conn: AsyncConnection, topic: str, item: Any) -> None:
    """Hand `item` to the observers of `topic` (see Database.observe_commits) once the open
    transaction has committed; nothing happens if it rolls back. For in-process caches that
    must learn of a change before the request that made it answers."""
    conn.info.setdefault(_AFTER_COMMIT, []).append((topic, item))


_CHANGED = "caravan.policy_changed"  # tenants whose policy this transaction changed


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection whose next BEGIN also scopes the transaction to a tenant.

    SQLAlchemy begins lazily, just before a transaction's first statement, with asyncpg's
    `Transaction.start()`, which sends `BEGIN ...;` as a simple-protocol query. When a tenant
    is pending, the set_config rides in that same query: BEGIN and the tenant setting cost one
    round trip, and no statement of the transaction can run before both. The pending tenant
    is a `uuid.UUID` rendered by Python (never caller text), consumed by that one BEGIN, and
    cleared whenever the connection is checked in or out of the pool.
    """

    _caravan_tenant: uuid.UUID | None = None

    def scope_next_begin(self, tenant_id: uuid.UUID | None) -> None:
        if tenant_id is not None and not isinstance(tenant_id, uuid.UUID):
            raise TypeError("the tenant must be a uuid.UUID")
        if tenant_id is not None and self.is_in_transaction():
            raise RuntimeError("a tenant can only be set before the transaction begins")
        self._caravan_tenant = tenant_id

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109 - asyncpg's signature
        tenant = self._caravan_tenant
        if tenant is not None and not args and query.startswith("BEGIN"):
            self._caravan_tenant = None
            begin = query.rstrip().rstrip(";")
            query = f"{begin}; SELECT set_config('app.tenant_id', '{tenant}', true)"
        return str(await super().execute(query, *args, timeout=timeout))


def _driver(entry: ConnectionPoolEntry) -> TenantConnection | None:
    driver = entry.driver_connection
    return driver if isinstance(driver, TenantConnection) else None


async def begin_tenant(
    conn: AsyncConnection, tenant_id: uuid.UUID, versions: PolicyVersions | None = None
) -> None:
    """Scope the transaction about to begin on `conn` to a tenant (sent with its BEGIN) and
    remember the tenant's policy version on it: from `versions` when it can be trusted, else
    read now (`caravan_begin_tenant`, which sets the tenant too)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if isinstance(driver, TenantConnection):
        driver.scope_next_begin(tenant_id)
    version = versions.get(tenant_id) if versions is not None else None
    if version is None:
        epoch = versions.epoch if versions is not None else 0
        result = await conn.execute(_BEGIN_TENANT, {"tenant_id": tenant_id})
        version = result.scalar_one()  # None while the tenant is being created
        if versions is not None and version is not None:
            versions.remember(tenant_id, version, epoch)
    conn.info[POLICY_VERSION] = version


async def note_policy_change(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """Call in the transaction that bumps a tenant's policy_version: every process forgets
    the remembered version when it commits (NOTIFY), this one as soon as it ends."""
    await conn.execute(_NOTIFY, {"tenant_id": str(tenant_id)})
    conn.info.setdefault(_CHANGED, set()).add(tenant_id)


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pgbouncer: bool = False,
        listen_url: str | None = None,
    ) -> None:
        server_settings = {"application_name": "caravan"}
        connect_args: dict[str, Any] = {"connection_class": TenantConnection}
        if pgbouncer:
            # PgBouncer in transaction mode hands each transaction any server connection:
            # a named prepared statement may not exist on the next one, and startup
            # parameters other than a few (application_name) are refused. Unnamed statements
            # are prepared and run inside their transaction (SQLAlchemy always begins one),
            # and are planned with their values, as plan_cache_mode below asks.
            connect_args.update(statement_cache_size=0, prepared_statement_cache_size=0)
        else:
            # asyncpg prepares every statement, and after five runs PostgreSQL may switch it
            # to a generic plan, planned without the values. With many tenants that plan
            # assumes `tenant_id = $1 AND owner_id = $2` matches ~1 row (1/n_distinct per
            # column) and picks (tenant_id, owner_id) for a get by id: every row a big
            # tenant's owner has, ~0.8 s at 1M rows (see README, "Performance"). Custom plans
            # see the values (skew included); planning these statements costs ~0.05 ms.
            server_settings["plan_cache_mode"] = "force_custom_plan"
        connect_args["server_settings"] = server_settings
        self.pgbouncer = pgbouncer
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            connect_args=connect_args,
        )
        # LISTEN needs a session of its own: never through PgBouncer in transaction mode.
        direct = listen_url if listen_url is not None else (None if pgbouncer else url)
        self.listen_dsn: str | None = (
            make_url(direct).set(drivername="postgresql").render_as_string(hide_password=False)
            if direct is not None
            else None
        )
        self._observers: dict[str, list[CommitObserver]] = {}
        self._on_dispose: list[Callable[[], Awaitable[None]]] = []
        self.policy_versions = PolicyVersions(self.listen_dsn)
        # A tenant set for a BEGIN that never came must not survive into the next checkout.
        event.listen(self.engine.sync_engine.pool, "checkout", _clear_pending)
        event.listen(self.engine.sync_engine.pool, "checkin", _clear_pending)

    def observe_commits(self, topic: str, observer: CommitObserver) -> None:
        """Call `observer(items)` after each commit that queued items of `topic`."""
        self._observers.setdefault(topic, []).append(observer)

    def on_dispose(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` (closing a listener connection, say) when the database is disposed."""
        self._on_dispose.append(work)

    def committed(self, conn: AsyncConnection) -> None:
        """The transaction on `conn` committed: hand its queued items to the observers."""
        queued: list[tuple[str, Any]] = conn.info.pop(_AFTER_COMMIT, [])
        topics: dict[str, list[Any]] = {}
        for topic, item in queued:
            topics.setdefault(topic, []).append(item)
        for topic, items in topics.items():
            for observer in self._observers.get(topic, []):
                observer(items)

    @staticmethod
    def discard(conn: AsyncConnection) -> None:
        """A transaction is starting on `conn`: drop what an earlier, rolled-back one queued."""
        conn.info.pop(_AFTER_COMMIT, None)

    def forget_changed(self, conn: AsyncConnection) -> None:
        """After a transaction ends: forget the versions of tenants whose policy it changed."""
        for tenant_id in conn.info.pop(_CHANGED, ()):
            self.policy_versions.forget(tenant_id)

    @asynccontextmanager
    async def tenant_transaction(self, tenant_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            # conn.info outlives a checkout, so what a rolled-back transaction queued is dropped
            # here, by the next one (not on the way out: a connection broken by a cancellation
            # cannot even be asked for its info).
            self.discard(conn)
            async with conn.begin():
                await begin_tenant(conn, tenant_id, self.policy_versions)
                yield conn
                await mark_applied(conn, tenant_id)
            # Committed. (After a failure the connection may be gone: leftovers are forgotten
            # after its next commit, which is harmless.)
            self.committed(conn)
            self.forget_changed(conn)

    @asynccontextmanager
    async def plain_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction with no tenant set: RLS shows no tenant rows at all."""
        async with self.engine.connect() as conn:
            self.discard(conn)
            async with conn.begin():
                yield conn
            self.committed(conn)

    async def dispose(self) -> None:
        work, self._on_dispose = self._on_dispose, []
        for item in work:
            try:
                await item()
            except Exception:
                log.exception("closing work at dispose failed")
        await self.policy_versions.stop()
        await self.engine.dispose()


def _clear_pending(_dbapi: Any, entry: ConnectionPoolEntry, *_: Any) -> None:
    driver = _driver(entry)
    if driver is not None:
        driver.scope_next_begin(None)


class TenantSession:
    """One request's access to its tenant's data.

    By default every `transaction()` is its own transaction. Inside `request_scope()` (GraphQL
    uses one per operation) all calls share one transaction that is committed only if the
    whole operation succeeded. A lock serialises use of the shared connection, because
    GraphQL resolves sibling fields concurrently.
    """

    def __init__(
        self,
        db: Database,
        tenant_id: uuid.UUID,
        on_denied: Callable[[Forbidden], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.tenant_id = tenant_id
        # Called, after the refused transaction has rolled back, for every access denial.
        self.on_denied = on_denied
        self._scoped = False
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self.rollback_only = False
        self._open = 0  # transactions of this session open right now
        self._after_release: list[AfterRelease] = []

    @property
    def in_request_scope(self) -> bool:
        """Whether calls share one operation-wide transaction (GraphQL)."""
        return self._scoped

    def after_release(self, work: AfterRelease) -> bool:
        """Run `work(rolled_back)` once this session's connection is back in the pool: when the
        open transaction ends, or the request scope. Work that needs its own transaction must
        wait for that, or a full pool would deadlock (every request holding one connection and
        waiting for a second). False when no transaction of this session is open."""
        if not self._scoped and self._open == 0:
            return False
        self._after_release.append(work)
        return True

    async def _released(self, rolled_back: bool) -> None:
        work, self._after_release = self._after_release, []
        for item in work:
            try:
                await item(rolled_back)
            except Exception:
                log.exception("work after a transaction failed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        self._open += 1
        failed = True
        try:
            async with self._transaction() as conn:
                yield conn
            failed = False
        except Forbidden as denied:
            if self.on_denied is not None:
                await self.on_denied(denied)
            raise
        finally:
            self._open -= 1
            if not self._scoped and self._open == 0:
                await self._released(failed)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if not self._scoped:
            async with self.db.tenant_transaction(self.tenant_id) as conn:
                yield conn
            return
        async with self._lock:
            conn = await self._shared()
            try:
                yield conn
            except BaseException:
                self.rollback_only = True
                raise

    async def _shared(self) -> AsyncConnection:
        """The request scope's connection, its transaction begun on first use."""
        if self._conn is None:
            conn = await self.db.engine.connect()
            self.db.discard(conn)
            await conn.begin()
            await begin_tenant(conn, self.tenant_id, self.db.policy_versions)
            self._conn = conn
        return self._conn

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Inside `request_scope()`: a failure within rolls back to here only (a SAVEPOINT), so
        the scope can still commit the work before and after it (a CSV import's batch keeps
        its good rows). Outside a request scope every call is its own transaction already."""
        if not self._scoped:
            yield
            return
        async with self._lock:
            nested = await (await self._shared()).begin_nested()
        failed_before = self.rollback_only
        try:
            yield
        except BaseException:
            if nested.is_active:
                await nested.rollback()
                self.rollback_only = failed_before  # undone: the scope is whole again
            raise
        if nested.is_active:
            await nested.commit()

    @asynccontextmanager
    async def request_scope(self) -> AsyncIterator[TenantSession]:
        self._scoped = True
        try:
            yield self
        except BaseException:
            self.rollback_only = True
            raise
        finally:
            self._scoped = False
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    if self.rollback_only:
                        await conn.rollback()
                    else:
                        await mark_applied(conn, self.tenant_id)
                        await conn.commit()
                        self.db.committed(conn)
                        self.db.forget_changed(conn)
                finally:
                    await conn.close()
            await self._released(self.rollback_only)
