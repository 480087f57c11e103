"""Persisted GraphQL queries (Apollo's automatic persisted queries protocol): a phone sends
`extensions.persistedQuery = {version: 1, sha256Hash}` instead of the document.

Known documents: the operations checked in under graphql/operations/ (the mobile app's, loaded
at startup; the hash is the SHA-256 of the file's text), known to every signed-in caller and
never evicted; and documents a signed-in client registered earlier by sending the hash together
with the query. Registered documents are kept per tenant: a hash one tenant registered is
unknown to every other tenant (so no tenant can learn what another runs, or evict its
documents), and each tenant's share is bounded (least recently used dropped), as is the number
of tenants held. This is the per-process cache: registrations are shared by every server
process through PostgreSQL (backend/persisted_queries/store.py). An unknown hash answers
`PersistedQueryNotFound` (the client then sends the query once); a hash that does not match
its query is a bad request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

OPERATIONS_DIR = Path(__file__).resolve().parents[3] / "graphql" / "operations"
MAX_DOCUMENT = 20_000  # characters; longer documents are run but never registered
MAX_PER_TENANT = 500  # documents registered by one tenant's clients
MAX_TENANT_CHARS = 500_000  # and their total size: at most ~0.5 MB of text per tenant
MAX_TENANTS = 100  # tenants whose registrations are held; the least recently active dropped


class PersistedQueryNotFound(Exception):
    """The hash names no document this caller's tenant knows: send the query with it once."""


class PersistedQueryMismatch(Exception):
    """The query sent does not hash to the hash sent with it."""


class PersistedQuerySignInRequired(Exception):
    """Persisted queries (registering or running by hash) need a signed-in caller."""


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_operations(directory: Path = OPERATIONS_DIR) -> dict[str, str]:
    """hash -> document for every *.graphql file checked in for clients."""
    if not directory.is_dir():
        return {}
    documents = (p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.graphql")))
    return {sha256_hex(d): d for d in documents}


def requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The persisted-query hash a request names, or None when it sends no persistedQuery."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if (
        not isinstance(persisted, dict)
        or persisted.get("version") != 1
        or not isinstance(persisted.get("sha256Hash"), str)
    ):
        raise PersistedQueryMismatch("persistedQuery needs version 1 and a sha256Hash")
    digest: str = persisted["sha256Hash"].lower()
    return digest


class _TenantDocuments:
    """One tenant's registered documents, least recently used first."""

    def __init__(self) -> None:
        self.documents: OrderedDict[str, str] = OrderedDict()
        self.chars = 0

    def get(self, digest: str) -> str | None:
        document = self.documents.get(digest)
        if document is not None:
            self.documents.move_to_end(digest)
        return document

    def put(self, digest: str, document: str, max_count: int, max_chars: int) -> None:
        if digest in self.documents:
            self.documents.move_to_end(digest)
            return
        self.documents[digest] = document
        self.chars += len(document)
        while len(self.documents) > max_count or self.chars > max_chars:
            _, dropped = self.documents.popitem(last=False)
            self.chars -= len(dropped)


class PersistedQueries:
    def __init__(
        self,
        operations: dict[str, str],
        *,
        per_tenant: int = MAX_PER_TENANT,
        tenant_chars: int = MAX_TENANT_CHARS,
        tenants: int = MAX_TENANTS,
    ) -> None:
        self._fixed = dict(operations)
        self._per_tenant = per_tenant
        self._tenant_chars = tenant_chars
        self._max_tenants = tenants
        self._tenants: OrderedDict[uuid.UUID, _TenantDocuments] = OrderedDict()

    def resolve(
        self, query: str | None, extensions: dict[str, Any] | None, tenant: uuid.UUID | None
    ) -> str | None:
        """The document to run: `query` itself, or the one the persisted-query hash names for
        this tenant (None: the caller is not signed in)."""
        digest = requested_hash(extensions)
        if digest is None:
            return query
        if query is not None and sha256_hex(query) != digest:
            raise PersistedQueryMismatch("provided sha256Hash does not match query")
        if tenant is None:
            raise PersistedQuerySignInRequired
        if query is not None:
            if digest not in self._fixed and len(query) <= MAX_DOCUMENT:
                self._register(tenant, digest, query)
            return query
        fixed = self._fixed.get(digest)
        if fixed is not None:
            return fixed
        held = self._tenants.get(tenant)
        document = held.get(digest) if held is not None else None
        if document is None:
            raise PersistedQueryNotFound
        self._tenants.move_to_end(tenant)
        return document

    def knows(self, tenant: uuid.UUID, digest: str) -> bool:
        """Whether this process holds the document (checked in, or cached for the tenant)."""
        held = self._tenants.get(tenant)
        return digest in self._fixed or (held is not None and digest in held.documents)

    def registrable(self, digest: str, document: str) -> bool:
        return digest not in self._fixed and len(document) <= MAX_DOCUMENT

    def remember(self, tenant: uuid.UUID, digest: str, document: str) -> None:
        """Cache a document another process registered (found in the shared store)."""
        self._register(tenant, digest, document)

    def _register(self, tenant: uuid.UUID, digest: str, document: str) -> None:
        held = self._tenants.get(tenant)
        if held is None:
            held = self._tenants[tenant] = _TenantDocuments()
        self._tenants.move_to_end(tenant)
        held.put(digest, document, self._per_tenant, self._tenant_chars)
        while len(self._tenants) > self._max_tenants:
            self._tenants.popitem(last=False)
