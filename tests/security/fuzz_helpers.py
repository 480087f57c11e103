"""The app for the fuzzers, in-process, on its own event loop in a thread.

Hypothesis and schemathesis drive synchronous test functions, while the app, its asyncpg pool and
httpx's ASGI transport live on an event loop: the app therefore runs on a loop of its own in a
daemon thread and each request is handed over to it (`AppThread.request`). Nothing is mocked: the
requests go through the whole ASGI stack to the embedded PostgreSQL of the test session.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import httpx
from schemathesis import APIOperation, BaseSchema, Case

from backend.app import create_app
from backend.runtime import Services, build_services
from backend.tenants.service import create_tenant
from tests.conftest import PASSWORD, Cluster, make_settings
from tests.security.figures import count

T = TypeVar("T")
Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]

# A body or a header that shows the server's insides.
STACK_TRACE_MARKERS = ("Traceback (most recent call last)", 'File "', "site-packages/")


class AppThread:
    """The real app and an httpx client over ASGI, served from a loop in a daemon thread."""

    def __init__(self, cluster: Cluster) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._cluster = cluster
        self.services: Services | None = None
        self.client: httpx.AsyncClient | None = None
        self.run(self._start())

    async def _start(self) -> None:
        # Built on the loop that will use them: asyncpg connections are bound to their loop.
        self.services = build_services(make_settings(self._cluster), self._cluster.urls.app_url)
        await self.services.keys.load()
        # A source address of its own: the fuzzer's many failed sign-ins feed the per-address
        # backoff, which must not throttle the other tests' sign-ins (they come from 127.0.0.1).
        source = (f"198.51.100.{uuid.uuid4().int % 250 + 1}", 40000)
        self.app = create_app(self.services)
        transport = httpx.ASGITransport(app=self.app, client=source)  # type: ignore[arg-type]
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        return self.run(self.client.request(method, url, **kwargs))

    def sign_in(self, body: dict[str, str]) -> httpx.Response:
        """A genuine sign-in from an address the fuzzer never used: the fuzzer's own failed
        sign-ins must not throttle the sign-in of the tenant it fuzzes as."""

        async def once() -> httpx.Response:
            source = ("192.0.2.1", 1)
            transport = httpx.ASGITransport(app=self.app, client=source)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.post("/auth/sign-in", json=body)

        return self.run(once())

    def close(self) -> None:
        async def stop() -> None:
            if self.client is not None:
                await self.client.aclose()
            if self.services is not None:
                await self.services.db.dispose()

        self.run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def fresh_tenant_token(app: AppThread, label: str) -> str:
    """A tenant of the fuzzer's own (its admin may be demoted or its settings changed by the
    fuzzer without touching the other tests' tenants) and its admin's access token."""
    assert app.services is not None
    slug = f"{label}-{uuid.uuid4().hex[:8]}"
    email = f"admin@{slug}.example"
    app.run(
        create_tenant(
            app.services.db,
            name=f"Tenant {label}",
            slug=slug,
            admin_email=email,
            admin_password=PASSWORD,
            require_admin_mfa=False,
        )
    )
    response = app.sign_in({"tenant": slug, "email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def httpx_kwargs(requests_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis serialises a case for `requests`; the same request for httpx."""
    kwargs = dict(requests_kwargs)
    out: dict[str, Any] = {
        "method": kwargs.pop("method"),
        "url": kwargs.pop("url"),
        "headers": dict(kwargs.pop("headers", None) or {}),
        "params": kwargs.pop("params", None),
    }
    cookies = kwargs.pop("cookies", None)
    if cookies:  # per-request cookies are deprecated in httpx: send the header itself
        out["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in dict(cookies).items())
    if "json" in kwargs:
        out["json"] = kwargs.pop("json")
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs.pop("files")
    return out


@dataclass
class FuzzTally:
    """What a fuzz run tried and what went wrong, one entry per distinct failure."""

    cases: int = 0
    server_errors: int = 0
    nonconforming: int = 0
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    # "METHOD /path" -> the statuses it answered
    statuses: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def record(self, where: str, what: str, example: str) -> None:
        self.failures.setdefault((where, what), example)

    def publish(self, name: str) -> None:
        """Add this run to the security figures (and keep its failures, see dump)."""
        count("fuzz_cases", self.cases)
        count("fuzz_server_errors", self.server_errors)
        count("fuzz_nonconforming", self.nonconforming)
        self.dump(name)

    def dump(self, name: str) -> None:
        """With CARAVAN_FUZZ_REPORT=<dir>, keep every distinct failure of a run as JSON there."""
        folder = os.environ.get("CARAVAN_FUZZ_REPORT")
        if folder:
            rows: list[Any] = [
                {"where": w, "what": what, "example": ex} for (w, what), ex in self.failures.items()
            ]
            rows.append({"statuses": {w: sorted(codes) for w, codes in self.statuses.items()}})
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{name}.json").write_text(json.dumps(rows, indent=1))

    def report(self) -> str:
        lines = [f"{len(self.failures)} distinct failure(s) in {self.cases} cases:"]
        for (where, what), example in sorted(self.failures.items()):
            lines.append(f"- {where}: {what}\n    {example}")
        return "\n".join(lines)


def operations_of(schema: BaseSchema) -> list[Operation]:
    """Every operation of a loaded schema (one that cannot be loaded fails the test)."""
    found: list[Operation] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises its error here
        found.append(operation)
    return found
