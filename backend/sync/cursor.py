"""The sync cursor: opaque to clients, strictly validated when it comes back.

A cursor says where a device's view of the data stands, in transaction ids (xid8 of the
history rows):
- `since`: changes by transactions with an id >= since are (re)read. It is the snapshot xmin
  taken when the previous round began, so a transaction that was still running then (even one
  that started earlier and committed late) is read again: duplicates are possible, misses not.
- `until`: the snapshot xmin taken when this round began; the next round's `since`.
- `after`: where paging stopped inside a round: (entity, id) while the first sync walks the
  working set (`since` is None), (txid, entity, id) while it walks the changes.
- `stamp`: what decided the caller's visibility then (backend/sync/visibility.py).
- `issued`: when `until` was taken (epoch seconds): a cursor older than the tenant's history
  retention may point past pruned history, so it starts over.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from backend.errors import BadRequest

_PREFIX = "s1."
_MAX_LENGTH = 512
_STAMP = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class SyncCursor:
    since: int | None  # None: the first sync, still walking the working set
    until: int
    after_txid: int | None = None
    after_entity: str | None = None
    after_id: uuid.UUID | None = None
    stamp: str | None = None
    issued: int = 0


def encode(cursor: SyncCursor) -> str:
    raw = [
        cursor.since,
        cursor.until,
        cursor.after_txid,
        cursor.after_entity,
        None if cursor.after_id is None else str(cursor.after_id),
        cursor.stamp,
        cursor.issued,
    ]
    data = json.dumps(raw, separators=(",", ":")).encode()
    return _PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("=")


def invalid_cursor(message: str = "is not a cursor this server issued") -> BadRequest:
    return BadRequest(f"cursor: {message}", field="cursor", code="invalid_cursor")


def _xid(value: Any, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise invalid_cursor()
    return value


def decode(text: str) -> SyncCursor:
    if len(text) > _MAX_LENGTH or not text.startswith(_PREFIX):
        raise invalid_cursor()
    body = text.removeprefix(_PREFIX)
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_cursor() from None
    if not isinstance(raw, list) or len(raw) != 7:
        raise invalid_cursor()
    issued = _xid(raw[6], optional=False)
    assert issued is not None
    stamp = raw[5]
    if not isinstance(stamp, str) or not _STAMP.match(stamp):
        raise invalid_cursor()
    since, until = _xid(raw[0], optional=True), _xid(raw[1], optional=False)
    after_txid, entity, record_id = _xid(raw[2], optional=True), raw[3], raw[4]
    assert until is not None
    # Paging positions: (entity, id) on a first sync, (txid, entity, id) on a delta; all or none.
    position = [entity, record_id] if since is None else [after_txid, entity, record_id]
    if since is None and after_txid is not None:
        raise invalid_cursor()
    if any(p is None for p in position) and any(p is not None for p in position):
        raise invalid_cursor()
    if since is not None and since > until:
        raise invalid_cursor()
    if entity is not None and not isinstance(entity, str):
        raise invalid_cursor()
    try:
        after_id = None if record_id is None else uuid.UUID(str(record_id))
    except ValueError:
        raise invalid_cursor() from None
    return SyncCursor(since, until, after_txid, entity, after_id, stamp, issued)
