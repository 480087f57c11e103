"""Where backups are kept, behind one interface: a local directory or an S3-compatible bucket.

Each backup is two objects: `<id>/archive.bin` (ciphertext) and `<id>/manifest.json`, written
LAST: a run that fails before its manifest is stored never lists as a backup. With S3 Object
Lock, both objects get a retention date, so nobody (this app included) can delete them early.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from backend.backups.errors import BackupError, BackupNotFound

ARCHIVE = "archive.bin"
MANIFEST = "manifest.json"


class StoreError(BackupError):
    code = "backup_store_failed"


class Store(Protocol):
    description: str

    def put_file(self, name: str, path: Path, retain_until: datetime | None) -> None: ...

    def put_bytes(self, name: str, data: bytes, retain_until: datetime | None) -> None: ...

    def get_file(self, name: str, dest: Path) -> None: ...

    def get_bytes(self, name: str) -> bytes: ...

    def names(self) -> list[str]: ...

    def delete(self, name: str) -> None: ...

    def lock_days(self) -> int | None:
        """The bucket's default Object Lock retention in days, or None without Object Lock."""
        ...

    def locked(self) -> bool: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"invalid object name {name!r}")
        return path

    def _prepare(self, name: str) -> Path:
        path = self._path(name)
        for folder in (self.root.parent, self.root, path.parent):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def put_file(self, name: str, path: Path, retain_until: datetime | None) -> None:
        target = self._prepare(name)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror}") from None

    def put_bytes(self, name: str, data: bytes, retain_until: datetime | None) -> None:
        target = self._prepare(name)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror}") from None

    def get_file(self, name: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(name), dest)
        except FileNotFoundError:
            raise BackupNotFound(f"{name} is not in {self.root}") from None

    def get_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise BackupNotFound(f"{name} is not in {self.root}") from None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.glob("*/*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
        parent = self._path(name).parent
        if parent != self.root.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()

    def lock_days(self) -> int | None:
        return None

    def locked(self) -> bool:
        return False


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


def parse_s3_url(url: str) -> S3Location:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BackupError(f"CARAVAN_BACKUP_URL must be s3://bucket/prefix, got {url!r}")
    prefix = parsed.path.strip("/")
    return S3Location(parsed.netloc, f"{prefix}/" if prefix else "")


def s3_client(endpoint: str | None, *, attempts: int = 5, **extra: Any) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config, **extra)


class S3Store:
    def __init__(
        self, location: S3Location, client: Any, *, retention_days: int | None, lock_mode: str
    ) -> None:
        self.location = location
        self.client = client
        self.retention_days = retention_days
        self.lock_mode = lock_mode
        self.description = f"s3://{location.bucket}/{location.prefix}"
        self.multipart_bytes = 8 << 20  # multipart above this, in parts of this size
        self._lock_asked: bool = False
        self._lock: int | None = None

    def _key(self, name: str) -> str:
        return self.location.prefix + name

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise BackupNotFound(f"{what}: not in {self.description}") from None
            raise StoreError(
                f"{what} refused by {self.description}: {error.get('Code')} {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise StoreError(f"{what} failed: {self.description} unreachable ({exc})") from None

    def _lock_args(self, retain_until: datetime | None) -> dict[str, Any]:
        if retain_until is None or not self.locked():
            return {}
        return {"ObjectLockMode": self.lock_mode, "ObjectLockRetainUntilDate": retain_until}

    def put_file(self, name: str, path: Path, retain_until: datetime | None) -> None:
        from boto3.s3.transfer import TransferConfig

        # Multipart uploads for large archives; boto3 retries each part.
        transfer = TransferConfig(
            multipart_threshold=self.multipart_bytes, multipart_chunksize=self.multipart_bytes
        )
        self._call(
            f"upload of {name}",
            self.client.upload_file,
            Filename=str(path),
            Bucket=self.location.bucket,
            Key=self._key(name),
            ExtraArgs=self._lock_args(retain_until) or None,
            Config=transfer,
        )

    def put_bytes(self, name: str, data: bytes, retain_until: datetime | None) -> None:
        self._call(
            f"upload of {name}",
            self.client.put_object,
            Bucket=self.location.bucket,
            Key=self._key(name),
            Body=data,
            **self._lock_args(retain_until),
        )

    def get_file(self, name: str, dest: Path) -> None:
        self._call(
            f"download of {name}",
            self.client.download_file,
            Bucket=self.location.bucket,
            Key=self._key(name),
            Filename=str(dest),
        )

    def get_bytes(self, name: str) -> bytes:
        response = self._call(
            f"download of {name}",
            self.client.get_object,
            Bucket=self.location.bucket,
            Key=self._key(name),
        )
        return bytes(response["Body"].read())

    def names(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        names: list[str] = []
        pages = self._call(
            "listing",
            paginator.paginate,
            Bucket=self.location.bucket,
            Prefix=self.location.prefix,
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    names.append(item["Key"][len(self.location.prefix) :])
        except Exception as exc:  # noqa: BLE001 - botocore raises while iterating pages
            raise StoreError(f"listing {self.description} failed: {exc}") from None
        return sorted(names)

    def delete(self, name: str) -> None:
        """Delete every version (a plain delete in a versioned bucket only hides the object)."""
        key = self._key(name)
        listing = self._call(
            f"listing versions of {name}",
            self.client.list_object_versions,
            Bucket=self.location.bucket,
            Prefix=key,
        )
        versions = [
            v
            for group in ("Versions", "DeleteMarkers")
            for v in listing.get(group, [])
            if v["Key"] == key
        ]
        if not versions:
            self._call(
                f"delete of {name}", self.client.delete_object, Bucket=self.location.bucket, Key=key
            )
        for version in versions:
            self._call(
                f"delete of {name}",
                self.client.delete_object,
                Bucket=self.location.bucket,
                Key=key,
                VersionId=version["VersionId"],
            )

    def lock_days(self) -> int | None:
        if not self._lock_asked:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                config = self.client.get_object_lock_configuration(Bucket=self.location.bucket)
            except ClientError:
                self._lock = None
            except BotoCoreError as exc:
                raise StoreError(f"{self.description} unreachable ({exc})") from None
            else:
                lock = config.get("ObjectLockConfiguration", {})
                if lock.get("ObjectLockEnabled") == "Enabled":
                    days = lock.get("Rule", {}).get("DefaultRetention", {}).get("Days")
                    self._lock = int(days) if days else 0
                else:
                    self._lock = None
            self._lock_asked = True
        return self._lock

    def locked(self) -> bool:
        return self.lock_days() is not None


def open_store(
    url: str | None,
    data_dir: Path,
    *,
    endpoint: str | None = None,
    retention_days: int | None = None,
    lock_mode: str = "COMPLIANCE",
    client: Any = None,
) -> Store:
    if not url:
        return LocalStore(data_dir / "backups" / "archives")
    if url.startswith("s3://"):
        return S3Store(
            parse_s3_url(url),
            client if client is not None else s3_client(endpoint),
            retention_days=retention_days,
            lock_mode=lock_mode,
        )
    if url.startswith("file://") or url.startswith("/"):
        return LocalStore(Path(urlparse(url).path if url.startswith("file://") else url))
    raise BackupError(f"CARAVAN_BACKUP_URL must be s3://bucket/prefix or a path, got {url!r}")
