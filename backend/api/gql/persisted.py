"""Persisted GraphQL queries (Apollo's automatic persisted queries protocol): a phone sends
`extensions.persistedQuery = {version: 1, sha256Hash}` instead of the document.

Known documents: the operations checked in under graphql/operations/ (the mobile app's, loaded
at startup; the hash is the SHA-256 of the file's text) and documents a client registered
earlier by sending the hash together with the query. An unknown hash answers
`PersistedQueryNotFound` (the client then sends the query once); a hash that does not match
its query is a bad request.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

OPERATIONS_DIR = Path(__file__).resolve().parents[3] / "graphql" / "operations"
MAX_REGISTERED = 1000  # documents registered by clients, least recently used dropped
MAX_DOCUMENT = 20_000  # characters; longer documents are run but never registered


class PersistedQueryNotFound(Exception):
    """The hash names no document this server knows: send the query with it once."""


class PersistedQueryMismatch(Exception):
    """The query sent does not hash to the hash sent with it."""


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_operations(directory: Path = OPERATIONS_DIR) -> dict[str, str]:
    """hash -> document for every *.graphql file checked in for clients."""
    if not directory.is_dir():
        return {}
    documents = (p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.graphql")))
    return {sha256_hex(d): d for d in documents}


class PersistedQueries:
    def __init__(self, operations: dict[str, str]) -> None:
        self._fixed = dict(operations)
        self._registered: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document to run: `query` itself, or the one the persisted-query hash names."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if (
            not isinstance(persisted, dict)
            or persisted.get("version") != 1
            or not isinstance(persisted.get("sha256Hash"), str)
        ):
            raise PersistedQueryMismatch("persistedQuery needs version 1 and a sha256Hash")
        digest = persisted["sha256Hash"].lower()
        if query is not None:
            if sha256_hex(query) != digest:
                raise PersistedQueryMismatch("provided sha256Hash does not match query")
            if digest not in self._fixed and len(query) <= MAX_DOCUMENT:
                self._registered[digest] = query
                self._registered.move_to_end(digest)
                while len(self._registered) > MAX_REGISTERED:
                    self._registered.popitem(last=False)
            return query
        if digest in self._fixed:
            return self._fixed[digest]
        if digest in self._registered:
            self._registered.move_to_end(digest)
            return self._registered[digest]
        raise PersistedQueryNotFound
