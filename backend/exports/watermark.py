"""Watermarks that name an export's id and requester, and survive opening and re-saving.

Every file gets a canary row somewhere in its middle whose every cell holds the same token:
"CRVN1." + base64url(tenant id | export id | requester id | HMAC tag). The tag is an
HMAC-SHA256 (truncated to 16 bytes) under a key derived from CARAVAN_SECRET_KEY, so a token
cannot be forged or altered to blame someone else. It is plain text in a cell, so Excel,
LibreOffice, openpyxl or the csv module keep it when they re-save the file; XLSX files also
carry it in their document properties. `caravan export trace FILE` finds and verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

PREFIX = "CRVN1."
_TAG_BYTES = 16
_TOKEN = re.compile(r"CRVN1\.([A-Za-z0-9_-]{86})")


@dataclass(frozen=True)
class Mark:
    tenant_id: uuid.UUID
    export_id: uuid.UUID
    requester_id: uuid.UUID


def watermark_key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, b"caravan export watermark v1", hashlib.sha256).digest()


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]


def token_for(key: bytes, mark: Mark) -> str:
    body = mark.tenant_id.bytes + mark.export_id.bytes + mark.requester_id.bytes
    raw = body + _tag(key, body)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def verify_token(key: bytes, encoded: str) -> Mark | None:
    """The mark a token names, or None when its tag does not verify."""
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    body, tag = raw[:48], raw[48:]
    if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, _tag(key, body)):
        return None
    return Mark(
        uuid.UUID(bytes=body[:16]), uuid.UUID(bytes=body[16:32]), uuid.UUID(bytes=body[32:])
    )


def canary_position(row_count: int) -> int:
    """Index (0-based, among data rows) before which the canary row goes: the middle."""
    return row_count // 2


@dataclass(frozen=True)
class Trace:
    found: int  # tokens found in the file
    invalid: int  # of which the tag does not verify: forged or damaged
    marks: list[Mark]  # the distinct ones whose tag verifies


def _texts(path: Path) -> list[str]:
    """The file's text: for XLSX, every cell and the document properties (openpyxl)."""
    if zipfile.is_zipfile(path):
        # Cells, shared strings, document properties: every XML part of the workbook.
        with zipfile.ZipFile(path) as archive:
            return [
                archive.read(name).decode("utf-8", "replace")
                for name in archive.namelist()
                if name.endswith(".xml")
            ]
    return [path.read_bytes().decode("utf-8", "replace")]


def trace_file(key: bytes, path: Path) -> Trace:
    found = invalid = 0
    marks: list[Mark] = []
    for text in _texts(path):
        for match in _TOKEN.finditer(text):
            found += 1
            mark = verify_token(key, match.group(1))
            if mark is None:
                invalid += 1
            elif mark not in marks:
                marks.append(mark)
    return Trace(found=found, invalid=invalid, marks=marks)
