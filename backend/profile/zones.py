"""Time zones: IANA names checked against the tz database, and the zone a user's day is in."""

from __future__ import annotations

import functools
import uuid
import zoneinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.db.base import table_of
from backend.errors import ValidationFailed
from backend.tenants.models import User

# Tenants have no time zone of their own yet: a user who chose none lives in UTC.
TENANT_DEFAULT_ZONE = "UTC"
MAX_NAME = 64
# Files of the tz database that name no place: the server's own zone, and placeholders.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})
_users = table_of(User)


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_PLACES


def check_zone(name: object, field: str = "time_zone") -> str:
    """The IANA name, or a 422 naming `field`."""
    if not isinstance(name, str) or len(name) > MAX_NAME or name not in _known_zones():
        raise ValidationFailed.one(
            field, "invalid_time_zone", "must be an IANA time zone, e.g. Europe/Berlin"
        )
    return name


def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(check_zone(name))


async def user_zone(conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """The zone the user chose, else the tenant's default (also for a zone a later tz
    database no longer knows)."""
    stmt = select(_users.c.time_zone).where(_users.c.tenant_id == tenant_id, _users.c.id == user_id)
    chosen = (await conn.execute(stmt)).scalar_one_or_none()
    return chosen if chosen in _known_zones() else TENANT_DEFAULT_ZONE
