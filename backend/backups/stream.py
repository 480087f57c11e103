"""Reading a decrypted archive as a byte stream (the plaintext is never written to disk)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from backend.backups.errors import BackupRefused


class BlockReader:
    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks: Iterator[bytes] = iter(blocks)
        self._buffer = bytearray()

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the stream)."""
        while len(self._buffer) < n:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise BackupRefused("the archive ends early")
        return data

    def line(self, limit: int = 16 << 20) -> bytes:
        while b"\n" not in self._buffer and len(self._buffer) < limit:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        end = self._buffer.find(b"\n")
        if end < 0:
            raise BackupRefused("the archive has no header line")
        data = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return data

    def drain(self) -> None:
        for _ in self._blocks:
            pass
