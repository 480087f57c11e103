"""The request Authlib sees: what a controller read from the HTTP request, with RFC 6749's
first-value and no-duplicates rules, and the reply shape every endpoint returns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request

from backend.auth.origin import Origin

Reply = tuple[int, Any, list[tuple[str, str]]]


@dataclass
class HttpRequest:
    """What a controller read from the HTTP request (the body already awaited)."""

    method: str
    uri: str
    headers: dict[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    origin: Origin = field(default_factory=Origin)

    def duplicated(self) -> str | None:
        """RFC 6749 section 3.1/3.2: no parameter may be sent twice."""
        seen: set[str] = set()
        for name, _ in [*self.query, *self.form]:
            if name in seen:
                return name
            seen.add(name)
        return None


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


class _Payload:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.data = first_values(pairs)
        self.datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self.datalist[name].append(value)

    @property
    def client_id(self) -> str | None:
        return self.data.get("client_id")

    @property
    def response_type(self) -> str | None:
        return self.data.get("response_type")

    @property
    def grant_type(self) -> str | None:
        return self.data.get("grant_type")

    @property
    def redirect_uri(self) -> str | None:
        return self.data.get("redirect_uri")

    @property
    def scope(self) -> str | None:
        return self.data.get("scope")

    @property
    def state(self) -> str | None:
        return self.data.get("state")


class CaravanRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.uri, headers=http.headers)
        self.http = http
        self.payload = _Payload([*http.query, *http.form])

    @property
    def args(self) -> dict[str, str]:
        return first_values(self.http.query)

    @property
    def form(self) -> dict[str, str]:
        return first_values(self.http.form)


def error_reply(error: OAuth2Error) -> Reply:
    body = {"error": str(error.error)}
    if error.description:
        body["error_description"] = str(error.description)
    return int(error.status_code), body, []
