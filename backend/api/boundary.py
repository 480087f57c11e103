"""One rule at the door for every request, before any handler, throttle or audit runs:

- no string may carry what PostgreSQL text cannot store (NUL, or a lone UTF-16 surrogate that
  a JSON `\\ud800` escape can smuggle in): the path, every query parameter, every form field
  and every string (and key) of a JSON body is checked, and the refusal names the field (the
  JSON path of the value, e.g. `changes[0].client_id`);
- a JSON body may not repeat a key (`duplicate_key`): parsers disagree on which one wins;
- a body sent to a JSON endpoint must say it is JSON (415 `unsupported_media_type`); the
  OAuth endpoints under /oauth/ take form bodies instead.

Refusals are problem+json (422 for a body value, 400 otherwise), a GraphQL error document for
/graphql, the OAuth error shape for /oauth/*, and the HTML error page for /oauth/authorize.
A body this middleware cannot parse is passed on untouched: the app answers malformed JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl

from graphql import GraphQLError, Visitor, parse, visit
from graphql.language import ArgumentNode, ObjectFieldNode, StringValueNode
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.api.buffered_body import read_body, replaying
from backend.api.rest.oauth_pages import SECURITY_HEADERS, error_page
from backend.auth.authorize import ShowError

GRAPHQL_PATH = "/graphql"
OAUTH_PREFIX = "/oauth/"
IMPORTS_PATH = "/api/v1/imports"  # the one multipart endpoint
AUTHORIZE_PATH = "/oauth/authorize"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# NUL, or a surrogate code point standing alone (a valid pair is decoded to one character).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A GraphQL document whose string literals may hold an escaped NUL (`\u0000`, `\u{0}`).
_GRAPHQL_ESCAPE = re.compile(r"\\u")


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    field: str
    detail: str


def unstorable(value: str) -> bool:
    """Whether PostgreSQL text cannot hold `value` (NUL, lone surrogates)."""
    if value.isascii():
        return "\x00" in value
    return _UNSTORABLE.search(value) is not None


def _shown(name: str) -> str:
    """A name fit to echo in a field: its unstorable characters as \\uXXXX escapes."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", name)


def _bad_characters(field: str, status: int) -> Refusal:
    return Refusal(
        status,
        "invalid_characters",
        field,
        f"{field}: contains a character that cannot be stored (NUL or a lone surrogate)",
    )


# -- JSON ----------------------------------------------------------------------------------------
class _Repeated(dict[str, Any]):
    """A decoded JSON object that named `key` more than once."""

    key: str = ""


class _RepeatedKey(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    raise _RepeatedKey


def _marking_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The slow hook, for the second pass that finds where the repeated key is."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            repeated = _Repeated(result)
            repeated.key = key
            return repeated
        result[key] = value
    return result


# A value's place in the document: (its key or index, the place of its container).
_Place = tuple[str | int, "_Place"] | None


def _path(place: _Place, last: str | int | None = None) -> str:
    """`changes[0].client_id`; built only for a refusal."""
    parts: list[str | int] = [] if last is None else [last]
    while place is not None:
        key, place = place
        parts.append(key)
    text = ""
    for key in reversed(parts):
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{_shown(key)}" if text else _shown(key)
    return text


def check_json(document: Any, *, status: int = 422) -> Refusal | None:
    """The first unstorable string or repeated key of a decoded body, in document order.
    Iterative: a deeply nested body must not exhaust the stack here."""
    stack: list[tuple[Any, _Place]] = [(document, None)]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            if unstorable(value):
                return _bad_characters(_path(place) or "body", status)
        elif isinstance(value, dict):
            if isinstance(value, _Repeated):
                where = _path(place, value.key)
                return Refusal(400, "duplicate_key", where, f"{where}: the key is repeated")
            for key in value:
                if unstorable(key):
                    return _bad_characters(_path(place, key), status)
            stack.extend((v, (k, place)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((value[i], (i, place)) for i in range(len(value) - 1, -1, -1))
    return None


def _decode_json(body: bytes) -> tuple[bool, bool, Any]:
    """(parsed, a key repeated, the document). A repeated key is located by a second pass."""
    try:
        return True, False, json.loads(body, object_pairs_hook=_object)
    except _RepeatedKey:
        return True, True, json.loads(body, object_pairs_hook=_marking_object)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False, False, None


# -- GraphQL documents ---------------------------------------------------------------------------
class _EscapedStrings(Visitor):
    """Finds a string literal that an escape made unstorable; names it by its argument path
    (e.g. `type`, `input.lastName`)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.found: str | None = None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.names.pop()

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        self.names.pop()

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if self.found is None and unstorable(node.value):
            self.found = ".".join(self.names) or "query"
            return Visitor.BREAK
        return None


def check_graphql_document(document: Any) -> Refusal | None:
    """String literals in a GraphQL document may spell NUL as an escape (`"\\u0000"`), which
    the JSON check cannot see. Parsed only when the document has such an escape at all."""
    requests = document if isinstance(document, list) else [document]
    for request in requests:
        query = request.get("query") if isinstance(request, dict) else None
        if not isinstance(query, str) or not _GRAPHQL_ESCAPE.search(query):
            continue
        try:
            tree = parse(query)
        except (GraphQLError, RecursionError):
            continue  # Strawberry answers the syntax error
        finder = _EscapedStrings()
        visit(tree, finder)
        if finder.found is not None:
            return _bad_characters(finder.found, 400)
    return None


# -- query strings and forms ---------------------------------------------------------------------
def check_pairs(raw: bytes, *, status: int = 400, unnamed: str = "query") -> Refusal | None:
    """A query string or form body, decoded the way Litestar decodes query strings. Percent
    decoding replaces invalid UTF-8, so only NUL (raw or `%00`) can make a value unstorable."""
    if b"\x00" not in raw and b"%00" not in raw:
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if unstorable(key) or unstorable(value):
            return _bad_characters(_shown(key) or unnamed, status)
    return None


def check_path(scope: Scope) -> Refusal | None:
    """The decoded path; a fault in it is named by its path parameter where there is one."""
    if not unstorable(scope["path"]):
        return None
    params = cast(dict[str, Any], scope).get("path_params") or {}
    for name, value in params.items():
        if isinstance(value, str) and unstorable(value):
            return _bad_characters(name, 400)
    return _bad_characters("path", 400)


def _media_type(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type":
            return str(value.decode("latin-1")).split(";")[0].strip().lower()
    return ""


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def check_body(scope: Scope, body: bytes) -> Refusal | None:
    path: str = scope["path"]
    media_type = _media_type(scope)
    if path.startswith(OAUTH_PREFIX):
        # Form posts; a body in any other type is refused by the OAuth endpoints themselves.
        if media_type == "application/x-www-form-urlencoded":
            return check_pairs(body, unnamed="body")
        return None
    if path.rstrip("/") == IMPORTS_PATH and media_type == "multipart/form-data":
        return None  # a CSV upload: its file's text is checked by the import itself
    if not is_json(media_type):
        detail = "send the body as application/json"
        return Refusal(415, "unsupported_media_type", "Content-Type", detail)
    parsed, repeated, document = _decode_json(body)
    if not parsed:
        return None  # the app answers malformed JSON
    status = 400 if path == GRAPHQL_PATH else 422
    # JSON cannot carry NUL or a lone surrogate raw (control characters must be escaped, and
    # a lone surrogate cannot be encoded): only a \u escape can. Without one, only a repeated
    # key needs the walk.
    refusal = check_json(document, status=status) if repeated or b"\\u" in body else None
    if refusal is None and path == GRAPHQL_PATH:
        refusal = check_graphql_document(document)
    return refusal


# -- answers -------------------------------------------------------------------------------------
def _answer(path: str, refusal: Refusal) -> tuple[dict[str, str], bytes]:
    if path == GRAPHQL_PATH:
        # The GraphQL controller answers a wrong media type as UNSUPPORTED_MEDIA_TYPE: agree.
        code = "UNSUPPORTED_MEDIA_TYPE" if refusal.status == 415 else "BAD_USER_INPUT"
        extensions = {"code": code, "reason": refusal.code, "field": refusal.field}
        body: dict[str, Any] = {"errors": [{"message": refusal.detail, "extensions": extensions}]}
        return {"content-type": "application/json"}, json.dumps(body).encode()
    if path == AUTHORIZE_PATH:
        page = error_page(ShowError("This request is invalid", refusal.detail))
        headers = {k.lower(): v for k, v in SECURITY_HEADERS.items()}
        return {**headers, "content-type": "text/html; charset=utf-8"}, page.encode()
    if path.startswith(OAUTH_PREFIX):
        body = {
            "error": "invalid_request",
            "error_description": refusal.detail,
            "code": refusal.code,
            "field": refusal.field,
        }
        headers = {"content-type": "application/json", "cache-control": "no-store"}
        return headers, json.dumps(body).encode()
    body = {
        "type": "about:blank",
        "status": refusal.status,
        "title": "Unsupported media type" if refusal.status == 415 else "Bad request",
        "detail": refusal.detail,
        "code": refusal.code,
        "field": refusal.field,
    }
    return {"content-type": "application/problem+json"}, json.dumps(body).encode()


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    path: str = scope["path"]
    headers, body = _answer(path, refusal)
    status = refusal.status
    if path.startswith(OAUTH_PREFIX) or (path == GRAPHQL_PATH and status != 415):
        status = 400  # the OAuth and GraphQL shapes have no 422
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BoundaryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = cast(dict[str, Any], scope)
        if http["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = check_path(scope) or check_pairs(http.get("query_string", b""))
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return
        if http["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive)
        if body and complete:
            refusal = check_body(scope, body)
            if refusal is not None:
                await _refuse(scope, send, refusal)
                return
        await self.app(scope, replaying(body, complete, receive), send)
