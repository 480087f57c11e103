"""Encryption at rest for secrets the database must hold: private signing keys, TOTP seeds.

Each value is a compact JWE (`dir`, A256GCM) under the process's secret key
(CARAVAN_SECRET_KEY; generated under the data dir's secrets/ in development). The protected
header names what the value is for (`cty`), and is authenticated: a sealed TOTP seed cannot be
passed off as a signing key or the other way round. A database dump alone reveals neither.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from backend.errors import ConfigurationError

_ALGORITHMS = ["dir", "A256GCM"]
KEY_BYTES = 32


class SecretBoxError(Exception):
    """A sealed value could not be opened: wrong key, tampered, or sealed for another purpose."""


def _decode_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigurationError("CARAVAN_SECRET_KEY must be 32 random bytes, base64url-encoded")
    return key


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def load_or_create_secret_key(configured: str | None, secrets_dir: Path) -> bytes:
    if configured is not None:
        return _decode_key(configured)
    path = secrets_dir / "secret-key"
    if path.exists():
        return _decode_key(path.read_text())
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return _decode_key(path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(new_secret_key())
    return _decode_key(path.read_text())


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._key = OctKey.import_key(key)

    def seal(self, plaintext: bytes, *, purpose: str) -> str:
        header = {"alg": "dir", "enc": "A256GCM", "cty": purpose}
        return jwe.encrypt_compact(header, plaintext, self._key, algorithms=_ALGORITHMS)

    def open(self, sealed: str, *, purpose: str) -> bytes:
        try:
            value = jwe.decrypt_compact(sealed, self._key, algorithms=_ALGORITHMS)
        except (JoseError, ValueError, TypeError) as exc:
            raise SecretBoxError("the sealed value cannot be opened with this key") from exc
        if value.protected.get("cty") != purpose or value.plaintext is None:
            raise SecretBoxError(f"the sealed value is not a {purpose}")
        return value.plaintext
