"""A simulated phone: it keeps a local copy of what it may see, edits it offline into an outbox,
and on reconnecting pushes the outbox and pulls what changed, the way a mobile app would use
the sync API. It talks to the server only over HTTP, and refuses to while offline."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import TenantUser

Key = tuple[str, str]  # (entity, id)


class Offline(Exception):
    pass


class Phone:
    def __init__(self, client: httpx.AsyncClient, user: TenantUser, device_id: str) -> None:
        self.client = client
        self.user = user
        self.device_id = device_id
        self.online = True
        self.cursor: str | None = None
        self.records: dict[Key, dict[str, Any]] = {}
        self.outbox: dict[str, dict[str, Any]] = {}  # client_id -> pending change
        self.results: dict[str, dict[str, Any]] = {}  # client_id -> the server's answer
        self.round_trips = 0

    # -- the network -----------------------------------------------------------------------
    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        if not self.online:
            raise Offline
        self.round_trips += 1
        response = await self.client.request(
            method, "/api/v1/sync", headers=self.user.headers, **kwargs
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pull(self) -> None:
        while True:
            params = {"device_id": self.device_id, "limit": 50}
            if self.cursor is not None:
                params["cursor"] = self.cursor
            page = await self._call("GET", params=params)
            if page["reset"]:
                self.records.clear()
            for change in page["changes"]:
                key = (change["entity"], change["id"])
                if change["op"] == "delete":
                    self.records.pop(key, None)
                else:
                    self.records[key] = change["record"]
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return

    async def push(self, resolution: str) -> None:
        if not self.outbox:
            return
        body = {
            "device_id": self.device_id,
            "resolution": resolution,
            "changes": list(self.outbox.values()),
        }
        answer = await self._call("POST", json=body)
        for result in answer["results"]:
            self.results[result["client_id"]] = result
            del self.outbox[result["client_id"]]

    async def sync(self, resolution: str = "server_wins") -> None:
        """What the app does on reconnecting: push the outbox, then pull."""
        await self.push(resolution)
        await self.pull()

    # -- local edits (work offline) ----------------------------------------------------------
    def edit(self, entity: str, record_id: str, **fields: Any) -> str:
        """Edit the local copy; repeated edits of one record travel as one change, based on the
        version the phone last had from the server."""
        record = self.records[(entity, record_id)]
        for client_id, change in self.outbox.items():
            if change.get("id") == record_id and change["op"] == "update":
                change["fields"].update(fields)
                record.update(fields)
                return client_id
        client_id = uuid.uuid4().hex
        self.outbox[client_id] = {
            "client_id": client_id,
            "entity": entity,
            "op": "update",
            "id": record_id,
            "base_version": record["version"],
            "fields": dict(fields),
        }
        record.update(fields)
        return client_id

    def create(self, entity: str, **fields: Any) -> str:
        client_id = uuid.uuid4().hex
        self.outbox[client_id] = {
            "client_id": client_id,
            "entity": entity,
            "op": "create",
            "fields": dict(fields),
        }
        return client_id

    def delete(self, entity: str, record_id: str) -> str:
        record = self.records.pop((entity, record_id))
        client_id = uuid.uuid4().hex
        self.outbox[client_id] = {
            "client_id": client_id,
            "entity": entity,
            "op": "delete",
            "id": record_id,
            "base_version": record["version"],
        }
        return client_id
