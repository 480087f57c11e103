"""Export files at rest: AES-256-GCM with a fresh key per file, in chunks, under
$CARAVAN_DATA_DIR/exports/<tenant>/<export>.bin. The file key is sealed under the process's
secret key and kept in the export's row, so the file alone (or the database alone) reveals
nothing. Each chunk's nonce carries its index and its associated data the export id and whether
it is the last chunk: chunks cannot be reordered, swapped between files, or cut off.
"""

from __future__ import annotations

import os
import secrets
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CVX1"
CHUNK = 64 * 1024
_LENGTH = struct.Struct(">I")


class StorageError(Exception):
    """The stored file is missing, tampered with or cut short."""


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(export_id: uuid.UUID, final: bool) -> bytes:
    return export_id.bytes + (b"\x01" if final else b"\x00")


class EncryptedWriter:
    """A binary sink that encrypts what it is given, chunk by chunk, into `path`."""

    def __init__(self, path: Path, export_id: uuid.UUID) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.key = AESGCM.generate_key(bit_length=256)
        self._aes = AESGCM(self.key)
        self._export_id = export_id
        self._prefix = secrets.token_bytes(8)
        self._index = 0
        self._buffer = bytearray()
        self._file: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed in close()/abort()
        os.chmod(path, 0o600)
        self._file.write(MAGIC + self._prefix)
        self.size = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) > CHUNK:  # keep the last bytes for the final chunk
            self._emit(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]

    def _emit(self, plain: bytes, *, final: bool) -> None:
        sealed = self._aes.encrypt(
            _nonce(self._prefix, self._index), plain, _aad(self._export_id, final)
        )
        self._file.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._file.close()

    def abort(self) -> None:
        try:
            self._file.close()  # flushing may fail again (a full disk): remove the file anyway
        except OSError:
            pass
        finally:
            self.path.unlink(missing_ok=True)


def read_decrypted(path: Path, key: bytes, export_id: uuid.UUID) -> Iterator[bytes]:
    """The plaintext, chunk by chunk; StorageError on any tampering or truncation."""
    aes = AESGCM(key)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise StorageError("the export file is gone") from None
    with handle:
        header = handle.read(len(MAGIC) + 8)
        if len(header) != len(MAGIC) + 8 or not header.startswith(MAGIC):
            raise StorageError("not an export file")
        prefix = header[len(MAGIC) :]
        index = 0
        pending = _read_chunk(handle)
        while pending is not None:
            following = _read_chunk(handle)
            final = following is None
            try:
                yield aes.decrypt(_nonce(prefix, index), pending, _aad(export_id, final))
            except InvalidTag:
                raise StorageError("the export file was altered or cut short") from None
            index += 1
            pending = following
        if index == 0:
            raise StorageError("the export file is empty")


def _read_chunk(handle: BinaryIO) -> bytes | None:
    head = handle.read(_LENGTH.size)
    if not head:
        return None
    if len(head) != _LENGTH.size:
        raise StorageError("the export file is cut short")
    (length,) = _LENGTH.unpack(head)
    body = handle.read(length)
    if len(body) != length:
        raise StorageError("the export file is cut short")
    return body


def export_path(data_dir: Path, tenant_id: uuid.UUID, export_id: uuid.UUID) -> Path:
    return data_dir / "exports" / str(tenant_id) / f"{export_id}.bin"
