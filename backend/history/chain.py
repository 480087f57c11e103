"""The hash chain's arithmetic: how a sealed row is encoded and how each link is computed.

link(n) = SHA-256(prev_hash || canonical JSON of {seq, source, row}), where `row` holds every
column of the history row or security event except the redactable values: history rows are
represented by their per-row salt and the salted digests of old/new values. Erasing a value
(setting it to NULL) therefore leaves every link intact, while editing a value is still caught:
a present value must hash to its digest (`value_matches`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backend.history.changes import value_digest
from backend.history.seals import EVENT, HISTORY

GENESIS = "0" * 64

HISTORY_COLUMNS = (
    "tenant_id",
    "id",
    "occurred_at",
    "entity",
    "record_id",
    "event",
    "field",
    "value_salt",
    "old_digest",
    "new_digest",
    "actor_user_id",
    "actor_client_id",
    "request_id",
    "channel",
)
EVENT_COLUMNS = (
    "tenant_id",
    "id",
    "occurred_at",
    "type",
    "outcome",
    "actor_user_id",
    "actor_client_id",
    "subject_user_id",
    "request_id",
    "channel",
    "source_ip",
    "details",
)
COLUMNS = {HISTORY: HISTORY_COLUMNS, EVENT: EVENT_COLUMNS}


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def encode(seq: int, source: str, row: Mapping[str, Any]) -> bytes:
    body = {name: _plain(row[name]) for name in COLUMNS[source]}
    entry = {"seq": seq, "source": source, "row": body}
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(prev_hash: str, seq: int, source: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + encode(seq, source, row)).hexdigest()


def value_matches(row: Mapping[str, Any]) -> bool:
    """A history row's present (not erased) values still hash to their sealed digests."""
    salt = row["value_salt"]
    pairs = ((row["old_value"], row["old_digest"]), (row["new_value"], row["new_digest"]))
    for value, digest in pairs:
        if value is not None and value_digest(salt, value) != digest:
            return False
    return True
