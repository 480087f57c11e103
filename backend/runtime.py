"""The long-lived objects one server process holds, built once from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from backend.auth.keys import SigningKeys, load_or_create_key
from backend.auth.sessions import SessionService
from backend.auth.tokens import AccessTokens, TokenSettings
from backend.db.session import Database
from backend.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: SigningKeys
    tokens: AccessTokens
    sessions: SessionService


def build_services(settings: Settings, app_database_url: str) -> Services:
    db = Database(
        app_database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
    )
    keys = SigningKeys(load_or_create_key(settings.signing_key, settings.data_dir / "secrets"))
    tokens = AccessTokens(
        keys,
        TokenSettings(
            issuer=settings.issuer,
            audience=settings.audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
        ),
    )
    sessions = SessionService(db, tokens, settings.refresh_token_ttl_seconds)
    return Services(settings=settings, db=db, keys=keys, tokens=tokens, sessions=sessions)
