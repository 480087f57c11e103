"""Compress then encrypt, streamed: zstd, then AES-256-GCM in authenticated chunks.

Archive layout: MAGIC, then frames of `[u32 length][ciphertext+tag]`. Each frame holds up to
CHUNK bytes of compressed data. The nonce is the chunk index (a fresh data key per backup makes
a counter nonce safe); the AAD binds the backup id, the chunk index and a final flag, so a
reordered, dropped, truncated or spliced-in chunk fails authentication. Memory stays at a few
chunks whatever the size of the backup.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.backups.errors import BackupRefused

MAGIC = b"CARAVAN-BACKUP-1\n"
CHUNK = 1 << 20
_LEN = struct.Struct(">I")
_MAX_FRAME = CHUNK + 16


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(backup_id: str, index: int, final: bool) -> bytes:
    return b"%s|%d|%d" % (backup_id.encode(), index, int(final))


class EncryptingWriter:
    """A file-like sink: plaintext in, compressed + encrypted frames out to `dest`."""

    def __init__(self, dest: BinaryIO, key: bytes, backup_id: str, level: int = 3) -> None:
        self.dest = dest
        self.aes = AESGCM(key)
        self.backup_id = backup_id
        self.compressor = zstandard.ZstdCompressor(level=level).compressobj()
        self.buffer = bytearray()
        self.index = 0
        self.plain_sha = hashlib.sha256()
        self.cipher_sha = hashlib.sha256()
        self.plain_bytes = 0
        self.cipher_bytes = 0
        self._emit(MAGIC)

    def _emit(self, data: bytes) -> None:
        self.dest.write(data)
        self.cipher_sha.update(data)
        self.cipher_bytes += len(data)

    def _seal(self, chunk: bytes, final: bool) -> None:
        sealed = self.aes.encrypt(
            _nonce(self.index), chunk, _aad(self.backup_id, self.index, final)
        )
        self._emit(_LEN.pack(len(sealed)) + sealed)
        self.index += 1

    def write(self, data: bytes) -> int:
        self.plain_sha.update(data)
        self.plain_bytes += len(data)
        self.buffer += self.compressor.compress(data)
        while len(self.buffer) > CHUNK:  # keep at least one byte back for the final frame
            self._seal(bytes(self.buffer[:CHUNK]), final=False)
            del self.buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        self.buffer += self.compressor.flush()
        while len(self.buffer) > CHUNK:
            self._seal(bytes(self.buffer[:CHUNK]), final=False)
            del self.buffer[:CHUNK]
        self._seal(bytes(self.buffer), final=True)
        self.buffer.clear()


class DecryptingReader:
    """Iterates plaintext blocks of an archive; raises BackupRefused on any tampering.

    The caller must consume to the end: only then are truncation and the hashes checked.
    """

    def __init__(self, source: BinaryIO, key: bytes, backup_id: str) -> None:
        self.source = source
        self.aes = AESGCM(key)
        self.backup_id = backup_id
        self.plain_sha = hashlib.sha256()
        self.cipher_sha = hashlib.sha256()
        self.plain_bytes = 0

    def _read(self, n: int) -> bytes:
        data = self.source.read(n)
        self.cipher_sha.update(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        if self._read(len(MAGIC)) != MAGIC:
            raise BackupRefused("the archive is not a Caravan backup (bad header)")
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        index = 0
        while True:
            head = self._read(_LEN.size)
            if len(head) < _LEN.size:
                raise BackupRefused("the archive is truncated (no final chunk)")
            (length,) = _LEN.unpack(head)
            if length > _MAX_FRAME:
                raise BackupRefused(f"chunk {index} has an impossible length")
            sealed = self._read(length)
            chunk, final = self._open(index, sealed)
            block = decompressor.decompress(chunk)
            if final:
                block += decompressor.flush()
            if block:
                self.plain_sha.update(block)
                self.plain_bytes += len(block)
                yield block
            index += 1
            if final:
                break
        if self._read(1):
            raise BackupRefused("the archive has data after its final chunk")

    def _open(self, index: int, sealed: bytes) -> tuple[bytes, bool]:
        for final in (False, True):
            try:
                chunk = self.aes.decrypt(_nonce(index), sealed, _aad(self.backup_id, index, final))
            except InvalidTag:
                continue
            return chunk, final
        raise BackupRefused(
            f"chunk {index} failed authentication: the archive was altered or the key is wrong"
        )


def decrypt_all(source: BinaryIO, key: bytes, backup_id: str) -> DecryptingReader:
    """Read an archive to its end, discarding the plaintext: returns the reader with hashes."""
    reader = DecryptingReader(source, key, backup_id)
    for _ in reader:
        pass
    return reader
