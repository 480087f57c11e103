"""Client authentication as Authlib sees it: which methods each client type may use (a secret
by Basic or POST for confidential clients, none for public ones), the client's redirect URIs,
grant types and scopes, and an audit event for every failed client authentication."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote, urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy.exc import IntegrityError

from backend.auth.clients import AUTHORIZATION_CODE, PUBLIC, Client
from backend.auth.oauth_issue import scope_list
from backend.auth.oauth_request import CaravanRequest, HttpRequest, Reply, first_values
from backend.auth.opaque import parse_client_id
from backend.db.session import Database
from backend.history.events import EventType, record_event_now

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_METHODS = [*SECRET_METHODS, "none"]


class AuthlibClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required, then matched exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client may have all of it; None (invalid_scope) if not.
        No scope asked: everything the client is allowed."""
        allowed = self.client.allowed_scopes
        if not scope:
            return " ".join(allowed)
        requested = scope_list(scope)
        if not set(requested) <= set(allowed):
            return None
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.client_type == PUBLIC:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.client.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


def client_of(request: CaravanRequest) -> Client:
    client = request.client
    assert isinstance(client, AuthlibClient)
    return client.client


async def record_client_failure(db: Database, request: HttpRequest, reply: Reply) -> None:
    """A failed client authentication is a security event of the tenant the client id names."""
    status, body, _ = reply
    if not isinstance(body, dict) or body.get("error") != "invalid_client":
        return
    claimed = claimed_client_id(request)
    parsed = parse_client_id(claimed)
    if parsed is None:
        return
    tenant_id, client_id = parsed
    try:
        await record_event_now(
            db,
            tenant_id,
            EventType.CLIENT_AUTH_FAILED,
            outcome="failure",
            actor_client_id=client_id,
            details={"endpoint": urlsplit(request.uri).path, "status": status},
            **request.origin.event_fields(),
        )
    except IntegrityError:
        return  # a forged client_id naming no tenant: there is nowhere to record it


def claimed_client_id(request: HttpRequest) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])
    return first_values(request.form).get("client_id")
