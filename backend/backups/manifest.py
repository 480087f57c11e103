"""The manifest of one backup, signed so that an edited or swapped manifest is refused.

The signature is an HMAC-SHA256 whose key is derived (HKDF) from the backup's data key, which
only the master key can unwrap: forging a manifest needs the master key (or KMS), and a manifest
moved onto another archive fails the archive's checksum and its chunk authentication (the backup
id is in every chunk's AAD).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.backups.errors import BackupRefused

FORMAT = 1
FULL = "full"
TENANT = "tenant"


@dataclass(frozen=True)
class TableCount:
    rows: int
    digest: str


@dataclass
class Manifest:
    id: str
    created_at: datetime
    kind: str  # full / tenant
    tenant_id: str | None
    tenant_slug: str | None
    schema_version: list[str]
    tables: dict[str, TableCount]
    plaintext_sha256: str
    ciphertext_sha256: str
    plaintext_bytes: int
    ciphertext_bytes: int
    key_id: str
    wrapped_key: str  # base64
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data

    def as_dict(self) -> dict[str, Any]:
        """What `caravan backup list --json` prints (no wrapped key)."""
        data = self.body()
        data.pop("wrapped_key")
        data["total_rows"] = sum(t.rows for t in self.tables.values())
        return data

    @property
    def wrapped(self) -> bytes:
        return base64.b64decode(self.wrapped_key)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _mac_key(data_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"caravan-backup-manifest-v1"
    ).derive(data_key)


def sign(manifest: Manifest, data_key: bytes) -> bytes:
    body = manifest.body()
    mac = hmac.new(_mac_key(data_key), _canonical(body), hashlib.sha256).hexdigest()
    return json.dumps({"manifest": body, "hmac_sha256": mac}, indent=1).encode()


def parse(raw: bytes) -> tuple[Manifest, str, dict[str, Any]]:
    """Parse without trusting: returns the manifest, its claimed MAC and the signed body."""
    try:
        document = json.loads(raw)
        body = document["manifest"]
        mac = str(document["hmac_sha256"])
        manifest = Manifest(
            id=str(body["id"]),
            created_at=datetime.fromisoformat(body["created_at"]),
            kind=str(body["kind"]),
            tenant_id=body["tenant_id"],
            tenant_slug=body["tenant_slug"],
            schema_version=list(body["schema_version"]),
            tables={
                k: TableCount(int(v["rows"]), str(v["digest"])) for k, v in body["tables"].items()
            },
            plaintext_sha256=str(body["plaintext_sha256"]),
            ciphertext_sha256=str(body["ciphertext_sha256"]),
            plaintext_bytes=int(body["plaintext_bytes"]),
            ciphertext_bytes=int(body["ciphertext_bytes"]),
            key_id=str(body["key_id"]),
            wrapped_key=str(body["wrapped_key"]),
            format=int(body["format"]),
            extra=dict(body.get("extra", {})),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupRefused("the manifest is not valid JSON of the expected shape") from None
    if manifest.format != FORMAT:
        raise BackupRefused(f"unknown manifest format {manifest.format}")
    return manifest, mac, body


def check_signature(mac: str, body: dict[str, Any], data_key: bytes) -> None:
    expected = hmac.new(_mac_key(data_key), _canonical(body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        raise BackupRefused("the manifest's signature does not verify: it was edited or swapped")
