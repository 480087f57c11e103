"""The long-lived objects one server process holds, built once from Settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from joserfc.jwk import ECKey

from backend.auth.authorize import AuthorizationFlow
from backend.auth.credentials import PasswordCheck
from backend.auth.keyring import KeyRing
from backend.auth.keys import generate_key, key_from_json, load_or_create_key
from backend.auth.mfa import MfaService
from backend.auth.oauth_issue import OAuthIssuer
from backend.auth.oauth_server import CaravanServer
from backend.auth.revocation import CLOCK_MARGIN_SECONDS, RevocationList
from backend.auth.secretbox import SecretBox, load_or_create_secret_key
from backend.auth.sessions import SessionService
from backend.auth.throttle import Throttle
from backend.auth.tokens import AccessTokens, TokenSettings
from backend.db.session import Database
from backend.exports.read_hook import install_read_budget
from backend.exports.service import ExportService
from backend.exports.watermark import watermark_key
from backend.imports.service import ImportService
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.backups.service import BackupService


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyRing
    tokens: AccessTokens
    sessions: SessionService
    throttle: Throttle
    mfa: MfaService
    oauth: CaravanServer
    authorize: AuthorizationFlow
    exports: ExportService
    imports: ImportService
    # Scheduled encrypted backups (backend/backups), set by `caravan serve` when enabled.
    backups: BackupService | None = None


def first_signing_key(settings: Settings) -> Callable[[], ECKey]:
    """The key the database key ring starts with, when it is empty."""

    def make() -> ECKey:
        if settings.signing_key is not None:
            return key_from_json(settings.signing_key)
        if settings.is_production:
            return generate_key()
        return load_or_create_key(None, settings.data_dir / "secrets")

    return make


def build_services(settings: Settings, app_database_url: str) -> Services:
    install_read_budget()  # every bulk record read charges the reader's budget
    db = Database(
        app_database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pgbouncer=settings.db_pgbouncer,
        listen_url=settings.listen_database_url,
    )
    secret_key = load_or_create_secret_key(settings.secret_key, settings.data_dir / "secrets")
    box = SecretBox(secret_key)
    keys = KeyRing(
        db,
        box,
        first_key=first_signing_key(settings),
        longest_token_seconds=settings.access_token_ttl_seconds,
        leeway_seconds=settings.token_leeway_seconds,
    )
    # A revocation matters while a token it refuses may still be accepted.
    revocations = RevocationList(
        db,
        window_seconds=settings.access_token_ttl_seconds
        + settings.token_leeway_seconds
        + CLOCK_MARGIN_SECONDS,
    )
    tokens = AccessTokens(
        keys,
        TokenSettings(
            issuer=settings.issuer,
            audience=settings.audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
            leeway_seconds=settings.token_leeway_seconds,
        ),
        revocations,
    )
    throttle = Throttle(db)
    passwords = PasswordCheck(db, throttle)
    mfa = MfaService(db, box, throttle)
    sessions = SessionService(db, tokens, settings.refresh_token_ttl_seconds, passwords, mfa)
    issuer = OAuthIssuer(db, tokens, settings.refresh_token_ttl_seconds)
    oauth = CaravanServer(db, tokens, issuer)
    return Services(
        settings=settings,
        db=db,
        keys=keys,
        tokens=tokens,
        sessions=sessions,
        throttle=throttle,
        mfa=mfa,
        oauth=oauth,
        authorize=AuthorizationFlow(db, oauth, issuer, passwords, mfa),
        exports=ExportService(db, box, settings.data_dir, watermark_key(secret_key)),
        imports=ImportService(db),
    )
