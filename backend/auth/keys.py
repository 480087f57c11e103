"""Signing keys (ES256): making and importing them.

The ring itself lives in the database (backend/auth/keyring.py). CARAVAN_SIGNING_KEY (a private
JWK as JSON) or, in development, a key file created under the data dir's secrets/ (mode 0600)
supplies its first key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from joserfc.jwk import ECKey

from backend.errors import ConfigurationError

ALGORITHM = "ES256"


def key_from_json(raw: str) -> ECKey:
    try:
        key = ECKey.import_key(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"the signing key is not a valid EC private JWK: {exc}") from None
    if not key.is_private:
        raise ConfigurationError("the signing key must be a private key")
    key.ensure_kid()
    return key


def generate_key() -> ECKey:
    key = ECKey.generate_key("P-256", private=True)
    key.ensure_kid()
    return key


def load_or_create_key(configured: str | None, secrets_dir: Path) -> ECKey:
    if configured is not None:
        return key_from_json(configured)
    path = secrets_dir / "signing-key.json"
    if path.exists():
        return key_from_json(path.read_text())
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(key.as_dict(private=True), handle)
    return key
