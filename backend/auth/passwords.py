"""Password hashing with argon2id, off the event loop."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when no user matches, so a wrong email costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("caravan-timing-equaliser")

# Each argon2id hash holds 64 MiB while it runs: a burst of sign-ins on the default thread pool
# (6 threads on 2 cores) raised a worker's RSS by ~400 MB. At most this many at once; the rest
# wait their turn (sign-in is rate-limited anyway, and two cores cannot run more in parallel).
HASH_CONCURRENCY = 2
_slots = threading.BoundedSemaphore(HASH_CONCURRENCY)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def _hash(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        with _slots:
            ok = _hasher.verify(password_hash or _DUMMY_HASH, password)
        return ok and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """False for a wrong password and for a missing user (password_hash None), in equal time."""
    return await asyncio.to_thread(_verify, password_hash, password)
