"""One adapter per API skin, so a test says what it does once and runs it through both.

A skin takes snake_case field names and JSON values, and answers an `Outcome`: what happened in
the terms both skins share (ok, unauthenticated, forbidden, not found, stale, invalid), with the
record in snake_case. Each adapter checks its own wire format on the way (problem+json with a
code for REST; `extensions.code` or payload errors for GraphQL), so the tests never branch on
the skin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from backend.records.spec import EntitySpec
from tests.conftest import TenantUser
from tests.matrix.names import camel, list_root, single_root, snake, type_name

Kind = Literal["ok", "unauthenticated", "forbidden", "not_found", "stale", "invalid"]
PAGE = 100  # within both skins' page limits
PROBLEM_JSON = "application/problem+json"
REST_KINDS: dict[int, Kind] = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    412: "stale",
    400: "invalid",
    422: "invalid",
}
GQL_KINDS: dict[str, Kind] = {
    "UNAUTHENTICATED": "unauthenticated",
    "FORBIDDEN": "forbidden",
    "NOT_FOUND": "not_found",
}


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    record: dict[str, Any] | None = None  # snake_case keys; a list answer: {"items": [...]}
    code: str | None = None  # the machine-readable code of a refusal
    raw: Any = field(default=None, compare=False)  # the wire answer, for failure messages

    @property
    def items(self) -> list[dict[str, Any]]:
        assert self.kind == "ok" and self.record is not None, self
        items: list[dict[str, Any]] = self.record["items"]
        return items

    def ok(self) -> dict[str, Any]:
        assert self.kind == "ok" and self.record is not None, self.raw
        return self.record


class Skin(Protocol):
    name: str

    async def create(
        self, user: TenantUser | None, spec: EntitySpec, values: Mapping[str, Any]
    ) -> Outcome: ...

    async def get(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome: ...

    async def update(
        self,
        user: TenantUser | None,
        spec: EntitySpec,
        record_id: str,
        version: int,
        changes: Mapping[str, Any],
    ) -> Outcome: ...

    async def delete(
        self, user: TenantUser | None, spec: EntitySpec, record_id: str
    ) -> Outcome: ...

    async def list_ids(self, user: TenantUser | None, spec: EntitySpec) -> Outcome:
        """Every id the caller may list, all pages: {"items": [{"id": ...}, ...]}."""
        ...

    async def history(
        self, user: TenantUser | None, spec: EntitySpec, record_id: str
    ) -> Outcome: ...


def _headers(user: TenantUser | None, **extra: str) -> dict[str, str]:
    return {**(user.headers if user is not None else {}), **extra}


class RestSkin:
    name = "rest"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    def _refusal(self, response: httpx.Response) -> Outcome:
        kind = REST_KINDS.get(response.status_code)
        assert kind is not None, (response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
        body = response.json()
        assert body["status"] == response.status_code, body
        for key in ("title", "detail", "code"):
            assert isinstance(body[key], str) and body[key], body
        assert "Traceback" not in response.text
        return Outcome(kind, code=body["code"], raw=body)

    def _answer(self, response: httpx.Response, status: int) -> Outcome:
        if response.status_code != status:
            return self._refusal(response)
        if status == 204:
            assert response.content == b"", response.content
            return Outcome("ok", None)
        record: dict[str, Any] = response.json()
        return Outcome("ok", record, raw=record)

    async def create(
        self, user: TenantUser | None, spec: EntitySpec, values: Mapping[str, Any]
    ) -> Outcome:
        response = await self.client.post(
            f"/api/v1/{spec.plural}", json=dict(values), headers=_headers(user)
        )
        return self._answer(response, 201)

    async def get(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        response = await self.client.get(
            f"/api/v1/{spec.plural}/{record_id}", headers=_headers(user)
        )
        return self._answer(response, 200)

    async def update(
        self,
        user: TenantUser | None,
        spec: EntitySpec,
        record_id: str,
        version: int,
        changes: Mapping[str, Any],
    ) -> Outcome:
        response = await self.client.patch(
            f"/api/v1/{spec.plural}/{record_id}",
            json=dict(changes),
            headers=_headers(user, **{"If-Match": f'"{version}"'}),
        )
        return self._answer(response, 200)

    async def delete(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        response = await self.client.delete(
            f"/api/v1/{spec.plural}/{record_id}", headers=_headers(user)
        )
        return self._answer(response, 204)

    async def list_ids(self, user: TenantUser | None, spec: EntitySpec) -> Outcome:
        items: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"limit": PAGE}
        while True:
            response = await self.client.get(
                f"/api/v1/{spec.plural}", params=params, headers=_headers(user)
            )
            if response.status_code != 200:
                return self._refusal(response)
            page = response.json()
            items.extend({"id": r["id"]} for r in page["items"])
            if page["next"] is None:
                return Outcome("ok", {"items": items})
            params["after"] = page["next"]

    async def history(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        response = await self.client.get(
            f"/api/v1/{spec.plural}/{record_id}/history",
            params={"limit": PAGE},
            headers=_headers(user),
        )
        return self._answer(response, 200)


def _snake_keys(node: Mapping[str, Any]) -> dict[str, Any]:
    return {snake(k): v for k, v in node.items()}


class GraphQLSkin:
    name = "graphql"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def selection(spec: EntitySpec) -> str:
        """Every declared field of the entity, plus the system fields and the mask list."""
        fields = " ".join(camel(f) for f in spec.fields)
        return f"id version createdAt updatedAt withheldFields {fields}"

    async def _run(
        self, user: TenantUser | None, document: str, variables: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, Outcome | None]:
        """The operation's data, or the refusal its top-level errors say."""
        response = await self.client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers=_headers(user),
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        errors = result.get("errors")
        if not errors:
            data: dict[str, Any] = result["data"]
            return data, None
        codes = {e.get("extensions", {}).get("code") for e in errors}
        assert len(codes) == 1, result
        (code,) = codes
        kind = GQL_KINDS.get(code)
        assert kind is not None, result
        return None, Outcome(kind, code=code, raw=result)

    def _payload(self, payload: dict[str, Any], key: str) -> Outcome:
        """A mutation payload: the record, or its errors (a stale version is one of them)."""
        errors = payload["errors"]
        if errors:
            assert payload.get(key) is None, payload
            for error in errors:
                assert all(isinstance(error[k], str) and error[k] for k in error), payload
            codes = [e["code"] for e in errors]
            kind: Kind = "invalid"
            if "version_mismatch" in codes:
                kind = "stale"
                assert [(e["field"], e["code"]) for e in errors] == [
                    ("version", "version_mismatch")
                ], payload
            return Outcome(kind, code=codes[0], raw=payload)
        node = payload[key]
        return Outcome("ok", _snake_keys(node), raw=payload)

    async def create(
        self, user: TenantUser | None, spec: EntitySpec, values: Mapping[str, Any]
    ) -> Outcome:
        name, key = f"create{type_name(spec)}", single_root(spec)
        document = (
            f"mutation($input: Create{type_name(spec)}Input!) {{ {name}(input: $input) "
            f"{{ {key} {{ {self.selection(spec)} }} errors {{ field code message }} }} }}"
        )
        data, refused = await self._run(
            user, document, {"input": {camel(k): v for k, v in values.items()}}
        )
        return refused or self._payload(_present(data)[name], key)

    async def get(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        key = single_root(spec)
        document = f"query($id: ID!) {{ {key}(id: $id) {{ {self.selection(spec)} }} }}"
        data, refused = await self._run(user, document, {"id": record_id})
        if refused is not None:
            return refused
        node = _present(data)[key]
        if node is None:  # GraphQL's "not found": a null record, never a hint
            return Outcome("not_found", raw=data)
        return Outcome("ok", _snake_keys(node), raw=data)

    async def update(
        self,
        user: TenantUser | None,
        spec: EntitySpec,
        record_id: str,
        version: int,
        changes: Mapping[str, Any],
    ) -> Outcome:
        name, key = f"update{type_name(spec)}", single_root(spec)
        document = (
            f"mutation($input: Update{type_name(spec)}Input!) {{ {name}(input: $input) "
            f"{{ {key} {{ {self.selection(spec)} }} errors {{ field code message }} }} }}"
        )
        values = {"id": record_id, "version": version, **{camel(k): v for k, v in changes.items()}}
        data, refused = await self._run(user, document, {"input": values})
        return refused or self._payload(_present(data)[name], key)

    async def delete(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        name = f"delete{type_name(spec)}"
        document = (
            f"mutation($input: DeleteInput!) {{ {name}(input: $input) "
            "{ deletedId errors { field code message } } }"
        )
        data, refused = await self._run(user, document, {"input": {"id": record_id}})
        if refused is not None:
            return refused
        payload = _present(data)[name]
        if payload["errors"]:
            return Outcome("invalid", code=payload["errors"][0]["code"], raw=payload)
        assert payload["deletedId"] == record_id, payload
        return Outcome("ok", None, raw=payload)

    async def list_ids(self, user: TenantUser | None, spec: EntitySpec) -> Outcome:
        key = list_root(spec)
        document = (
            f"query($first: Int!, $after: String) {{ {key}(first: $first, after: $after) "
            "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }"
        )
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            data, refused = await self._run(user, document, {"first": PAGE, "after": after})
            if refused is not None:
                return refused
            connection = _present(data)[key]
            items.extend(edge["node"] for edge in connection["edges"])
            if not connection["pageInfo"]["hasNextPage"]:
                return Outcome("ok", {"items": items})
            after = connection["pageInfo"]["endCursor"]

    async def history(self, user: TenantUser | None, spec: EntitySpec, record_id: str) -> Outcome:
        key = single_root(spec)
        document = (
            f"query($id: ID!) {{ {key}(id: $id) {{ history(first: {PAGE}) {{ edges {{ node "
            "{ id event field oldValue newValue valuesWithheld channel } } } } }"
        )
        data, refused = await self._run(user, document, {"id": record_id})
        if refused is not None:
            return refused
        node = _present(data)[key]
        if node is None:
            return Outcome("not_found", raw=data)
        items = [_snake_keys(edge["node"]) for edge in node["history"]["edges"]]
        return Outcome("ok", {"items": items}, raw=data)


def _present(data: dict[str, Any] | None) -> dict[str, Any]:
    assert data is not None
    return data


def skins(client: httpx.AsyncClient) -> dict[str, Skin]:
    return {"rest": RestSkin(client), "graphql": GraphQLSkin(client)}


SKIN_NAMES = ("rest", "graphql")
