"""Signed checkpoints of each tenant's audit chain, kept where backups go.

A checkpoint is a compact JWS (ES256, `kid` in the header) over the tenant's chain head
`{tenant_id, seq, hash, at}`, signed with the server's current signing key. A `prune`
checkpoint also summarises what `caravan audit prune` deleted, written before it deletes.
They live outside the database (by default `$CARAVAN_DATA_DIR/backups/checkpoints/<tenant>/`,
one file per checkpoint), so a database owner who rewrites a whole chain consistently still
cannot make it agree with them.

A signature counts only if its key is in the database key ring AND that key's sealed private
half opens with CARAVAN_SECRET_KEY: a key row the owner inserted cannot vouch for anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select

from backend.auth.keyring import PURPOSE as KEY_PURPOSE
from backend.auth.keys import ALGORITHM
from backend.auth.models import SigningKey
from backend.auth.secretbox import SecretBox, SecretBoxError
from backend.db.base import table_of
from backend.db.session import Database

TYPE = "caravan.audit.checkpoint"
HEAD = "head"
PRUNE = "prune"
_NAME = re.compile(r"^(\d{12})-(head|prune)-(\d{8}T\d{12}Z)\.jws$")
_keys = table_of(SigningKey)


class CheckpointStore(Protocol):
    """Where checkpoints are kept: a local directory now; object storage with the backups."""

    async def put(self, tenant_id: uuid.UUID, name: str, data: bytes) -> None: ...

    async def names(self, tenant_id: uuid.UUID) -> list[str]: ...

    async def get(self, tenant_id: uuid.UUID, name: str) -> bytes: ...


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, tenant_id: uuid.UUID) -> Path:
        return self.root / str(tenant_id)

    async def put(self, tenant_id: uuid.UUID, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, tenant_id, name, data)

    def _put(self, tenant_id: uuid.UUID, name: str, data: bytes) -> None:
        folder = self._dir(tenant_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, folder / name)

    async def names(self, tenant_id: uuid.UUID) -> list[str]:
        return await asyncio.to_thread(self._names, tenant_id)

    def _names(self, tenant_id: uuid.UUID) -> list[str]:
        folder = self._dir(tenant_id)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.name.endswith(".jws"))

    async def get(self, tenant_id: uuid.UUID, name: str) -> bytes:
        return await asyncio.to_thread((self._dir(tenant_id) / name).read_bytes)


def default_store(data_dir: Path) -> DirectoryStore:
    return DirectoryStore(data_dir / "backups" / "checkpoints")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    kind: str
    tenant_id: uuid.UUID
    seq: int
    hash: str
    at: datetime
    kid: str
    pruned: dict[str, int] = field(default_factory=dict)


def checkpoint_name(seq: int, kind: str, at: datetime) -> str:
    return f"{seq:012d}-{kind}-{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.jws"


def latest_seq(names: list[str], kind: str = HEAD) -> int:
    """The highest seq among checkpoint file names of a kind (0 when none)."""
    seqs = [int(m.group(1)) for n in names if (m := _NAME.match(n)) and m.group(2) == kind]
    return max(seqs, default=0)


def sign(
    key: ECKey,
    tenant_id: uuid.UUID,
    seq: int,
    chain_hash: str,
    *,
    kind: str = HEAD,
    pruned: dict[str, int] | None = None,
) -> tuple[str, bytes]:
    """A checkpoint file's name and content."""
    at = datetime.now(UTC)
    payload: dict[str, Any] = {
        "typ": TYPE,
        "kind": kind,
        "tenant_id": str(tenant_id),
        "seq": seq,
        "hash": chain_hash,
        "at": at.isoformat(),
    }
    if pruned is not None:
        payload["pruned"] = pruned
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWS"}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    token = jws.serialize_compact(header, body, key, algorithms=[ALGORITHM])
    return checkpoint_name(seq, kind, at), token.encode()


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted: unknown key, bad signature, or malformed."""


def open_checkpoint(
    name: str, data: bytes, tenant_id: uuid.UUID, keys: dict[str, ECKey]
) -> Checkpoint:
    try:
        kid = jws.extract_compact(data).headers().get("kid")
    except (JoseError, ValueError, TypeError) as exc:
        raise CheckpointError("not a JWS") from exc
    if not isinstance(kid, str) or kid not in keys:
        raise CheckpointError(f"signed by key {kid!r}, which is not a trusted key of the ring")
    try:
        verified = jws.deserialize_compact(data, keys[kid], algorithms=[ALGORITHM])
        payload = json.loads(verified.payload)
        checkpoint = Checkpoint(
            name=name,
            kind=str(payload["kind"]),
            tenant_id=uuid.UUID(payload["tenant_id"]),
            seq=int(payload["seq"]),
            hash=str(payload["hash"]),
            at=datetime.fromisoformat(payload["at"]),
            kid=kid,
            pruned={k: int(v) for k, v in payload.get("pruned", {}).items()},
        )
        typ = payload["typ"]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError("the signature does not verify (tampered or forged)") from exc
    if typ != TYPE or checkpoint.kind not in (HEAD, PRUNE):
        raise CheckpointError("not an audit checkpoint")
    if checkpoint.tenant_id != tenant_id:
        raise CheckpointError(f"signed for another tenant ({checkpoint.tenant_id})")
    return checkpoint


async def trusted_keys(db: Database, box: SecretBox) -> dict[str, ECKey]:
    """Every key of the ring (retired ones too) whose sealed private half opens here."""
    async with db.plain_transaction() as conn:
        rows = (await conn.execute(select(_keys.c.kid, _keys.c.private_jwk_sealed))).all()
    trusted: dict[str, ECKey] = {}
    for kid, sealed in rows:
        try:
            key = ECKey.import_key(json.loads(box.open(sealed, purpose=KEY_PURPOSE)))
        except (SecretBoxError, ValueError, TypeError):
            continue
        if key.kid == kid:
            trusted[kid] = key
    return trusted


async def checkpoint_tenant(
    db: Database, key: ECKey, store: CheckpointStore, tenant_id: uuid.UUID
) -> tuple[int, str] | None:
    """Write a head checkpoint when the chain grew since the last one: (seq, file name)."""
    from backend.history.sealer import chain_head

    async with db.tenant_transaction(tenant_id) as conn:
        head = await chain_head(conn)
    if head.seq == 0 or head.seq <= latest_seq(await store.names(tenant_id)):
        return None
    name, data = sign(key, tenant_id, head.seq, head.hash)
    await store.put(tenant_id, name, data)
    return head.seq, name
