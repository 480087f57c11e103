"""Time-based one-time passwords (RFC 6238 on RFC 4226 HOTP), with the standard library only.

Authenticator apps use SHA-1, 6 digits and a 30-second step; the other digests exist for the
RFC's test vectors. A code is accepted for the current step and one step either side (clock
drift), and never for a step at or before the last one accepted (no replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends for HMAC-SHA-1

_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 section 5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), _DIGESTS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(at: float, *, step: int = STEP_SECONDS) -> int:
    return int(at // step)


def totp(
    key: bytes,
    at: float,
    *,
    digits: int = DIGITS,
    algorithm: str = "SHA1",
    step: int = STEP_SECONDS,
) -> str:
    return hotp(key, time_step(at, step=step), digits=digits, algorithm=algorithm)


def matching_step(
    key: bytes, code: str, *, at: float | None = None, after_step: int = -1
) -> int | None:
    """The time step `code` belongs to (within the drift window, later than `after_step`)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = time_step(time.time() if at is None else at)
    found = None
    for candidate in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Compare every candidate in constant time; never stop early.
        if hmac.compare_digest(hotp(key, candidate), code) and candidate > after_step:
            found = candidate
    return found


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def base32(key: bytes) -> str:
    return base64.b32encode(key).decode().rstrip("=")


def provisioning_uri(key: bytes, *, account: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read from a QR code (Key Uri Format)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": base32(key),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"
