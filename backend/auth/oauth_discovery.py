"""Discovery: the authorization server metadata (RFC 8414, also the OpenID Provider
metadata). The JWKS it points to is served from the key ring (backend/auth/keyring.py)."""

from __future__ import annotations

from typing import Any

from backend.auth.clients import AUTHORIZATION_CODE, CLIENT_CREDENTIALS
from backend.auth.oauth_client_auth import ALL_METHODS, SECRET_METHODS
from backend.policy.scopes import OAUTH_SCOPES


def server_metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata, which is also the OpenID Provider metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(OAUTH_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [AUTHORIZATION_CODE, "refresh_token", CLIENT_CREDENTIALS],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ALL_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "tenant",
            "email",
            "name",
        ],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
    }
