"""The persisted-query store's bounds that would take hundreds of tenants to reach over HTTP:
the number of tenants held and each tenant's total size (tests/security/test_graphql_hygiene.py
covers the rest through /graphql)."""

from __future__ import annotations

import uuid

import pytest

from backend.api.gql.persisted import (
    MAX_TENANTS,
    PersistedQueries,
    PersistedQueryNotFound,
    PersistedQuerySignInRequired,
    sha256_hex,
)

FIXED = "query Fixed { __typename }"


def _extensions(document: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}


def _register(store: PersistedQueries, tenant: uuid.UUID, document: str) -> None:
    assert store.resolve(document, _extensions(document), tenant) == document


def _known(store: PersistedQueries, tenant: uuid.UUID, document: str) -> bool:
    try:
        return store.resolve(None, _extensions(document), tenant) == document
    except PersistedQueryNotFound:
        return False


def test_the_least_recently_active_tenant_is_dropped_beyond_the_bound() -> None:
    store = PersistedQueries({sha256_hex(FIXED): FIXED})
    tenants = [uuid.uuid4() for _ in range(MAX_TENANTS + 1)]
    documents = [f"query T{i} {{ __typename }}" for i in range(len(tenants))]
    _register(store, tenants[0], documents[0])
    _register(store, tenants[1], documents[1])
    assert _known(store, tenants[0], documents[0])  # tenant 0 is now more recent than tenant 1
    for tenant, document in zip(tenants[2:], documents[2:], strict=True):
        _register(store, tenant, document)
    assert not _known(store, tenants[1], documents[1])
    assert _known(store, tenants[0], documents[0])
    assert _known(store, tenants[-1], documents[-1])
    # The checked-in operations stay, for a tenant that was dropped too.
    assert store.resolve(None, _extensions(FIXED), tenants[1]) == FIXED


def test_a_tenants_share_is_bounded_in_size_too() -> None:
    store = PersistedQueries({}, per_tenant=100, tenant_chars=1000)
    tenant = uuid.uuid4()
    big = [f"query B{i} {{ __typename }} #" + "x" * 400 for i in range(3)]
    for document in big:
        _register(store, tenant, document)
    assert [_known(store, tenant, d) for d in big] == [False, True, True]


def test_without_a_tenant_nothing_is_registered_or_looked_up() -> None:
    store = PersistedQueries({sha256_hex(FIXED): FIXED})
    document = "query Anon { __typename }"
    for query in (document, None):
        with pytest.raises(PersistedQuerySignInRequired):
            store.resolve(query, _extensions(document), None)
    with pytest.raises(PersistedQuerySignInRequired):
        store.resolve(None, _extensions(FIXED), None)
    assert not _known(store, uuid.uuid4(), document)
    # A request without a persisted-query extension is not this store's business.
    assert store.resolve(document, None, None) == document
