"""Master keys that wrap each backup's data key: local key files, or AWS KMS.

Local key files live in `$CARAVAN_DATA_DIR/backup-keys/` (mode 0700, files 0600), outside the
backups folder, so whoever holds the backups does not hold the key. One file per key; the newest
wraps new backups, and rotation only ever adds a file, so every older backup stays restorable
as long as its key file is kept.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.backups.errors import BackupError, BackupRefused

KMS_PREFIX = "kms:"
_KID = re.compile(r"^bk-\d{8}T\d{12}Z-[0-9a-f]{8}$")


class MasterKey(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes, backup_id: str) -> tuple[str, bytes]: ...

    def unwrap(self, key_id: str, wrapped: bytes, backup_id: str) -> bytes: ...


class LocalKeyFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key_id: str) -> Path:
        if not _KID.match(key_id):
            raise BackupRefused(f"the manifest names an invalid key id {key_id!r}")
        return self.folder / f"{key_id}.key"

    def key_ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("bk-*.key") if _KID.match(p.stem))

    def rotate(self) -> str:
        """Add a new key (the one new backups use); older keys are kept."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        # Key ids sort by creation time: the newest key wraps new backups.
        newest = (self.key_ids() or ["bk-"])[-1][3:25]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        while stamp <= newest:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        key_id = f"bk-{stamp}-{secrets.token_hex(4)}"
        fd = os.open(self._path(key_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        return key_id

    @property
    def key_id(self) -> str:
        ids = self.key_ids()
        return ids[-1] if ids else self.rotate()

    def _load(self, key_id: str) -> bytes:
        path = self._path(key_id)
        try:
            raw = base64.urlsafe_b64decode(path.read_text().strip())
        except FileNotFoundError:
            raise BackupRefused(
                f"master key {key_id} is missing from {self.folder}: cannot open this backup"
            ) from None
        except ValueError:
            raise BackupRefused(f"master key file {path} is not a valid key") from None
        if len(raw) != 32:
            raise BackupRefused(f"master key file {path} is not a 256-bit key")
        return raw

    def wrap(self, data_key: bytes, backup_id: str) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(12)
        key_id = self.key_id
        sealed = AESGCM(self._load(key_id)).encrypt(nonce, data_key, backup_id.encode())
        return key_id, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, backup_id: str) -> bytes:
        key = self._load(key_id)
        try:
            return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], backup_id.encode())
        except InvalidTag:
            raise BackupRefused(
                f"master key {key_id} does not open this backup's data key (wrong key)"
            ) from None


class KmsKey:
    """AWS KMS (or a compatible endpoint): the key never leaves KMS; rotation is KMS's own."""

    def __init__(self, kms_key_id: str, client: Any) -> None:
        self.kms_key_id = kms_key_id
        self.client = client

    @property
    def key_id(self) -> str:
        return KMS_PREFIX + self.kms_key_id

    def wrap(self, data_key: bytes, backup_id: str) -> tuple[str, bytes]:
        response = self.client.encrypt(
            KeyId=self.kms_key_id,
            Plaintext=data_key,
            EncryptionContext={"caravan_backup": backup_id},
        )
        return self.key_id, bytes(response["CiphertextBlob"])

    def unwrap(self, key_id: str, wrapped: bytes, backup_id: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        if not key_id.startswith(KMS_PREFIX):
            raise BackupRefused(f"this backup's key {key_id} is a local key file, not KMS")
        try:
            response = self.client.decrypt(
                KeyId=key_id[len(KMS_PREFIX) :],
                CiphertextBlob=wrapped,
                EncryptionContext={"caravan_backup": backup_id},
            )
        except ClientError as exc:
            raise BackupRefused(f"KMS refused to unwrap the data key: {exc}") from None
        except BotoCoreError as exc:
            raise BackupError(f"KMS is unreachable: {exc}") from None
        return bytes(response["Plaintext"])


def master_key(data_dir: Path, kms_key_id: str | None, kms_client: Any = None) -> MasterKey:
    if kms_key_id:
        if kms_client is None:
            import boto3

            kms_client = boto3.client("kms")
        return KmsKey(kms_key_id, kms_client)
    return LocalKeyFiles(data_dir / "backup-keys")
