"""The access-token signing key (ES256) and the public JWKS.

Production takes the key from CARAVAN_SIGNING_KEY (a private JWK as JSON). Development creates
one on first use under the data dir's secrets/ (mode 0600). Key rotation with several keys in the
database is the OAuth issue's work; the KeySet shape here already carries more than one key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from backend.errors import ConfigurationError

ALGORITHM = "ES256"


def _from_json(raw: str) -> ECKey:
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
        return _from_json(configured)
    path = secrets_dir / "signing-key.json"
    if path.exists():
        return _from_json(path.read_text())
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(key.as_dict(private=True), handle)
    return key


class SigningKeys:
    def __init__(self, current: ECKey, previous: list[ECKey] | None = None) -> None:
        self.current = current
        self.verifying = KeySet([current, *(previous or [])])

    def public_jwks(self) -> dict[str, Any]:
        keys = []
        for key in self.verifying.keys:
            public = key.as_dict(private=False)
            public.update(use="sig", alg=ALGORITHM)
            keys.append(public)
        return {"keys": keys}
