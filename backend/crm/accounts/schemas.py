"""Wire shapes of an account for REST (types only; rules live in service.py's field specs)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    industry: str | None | UnsetType = UNSET
    website: str | None | UnsetType = UNSET
    phone: str | None | UnsetType = UNSET
    address_line1: str | None | UnsetType = UNSET
    address_line2: str | None | UnsetType = UNSET
    city: str | None | UnsetType = UNSET
    region: str | None | UnsetType = UNSET
    postal_code: str | None | UnsetType = UNSET
    country: str | None | UnsetType = UNSET
    tags: list[str] | None | UnsetType = UNSET


class AccountUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    industry: str | None | UnsetType = UNSET
    website: str | None | UnsetType = UNSET
    phone: str | None | UnsetType = UNSET
    address_line1: str | None | UnsetType = UNSET
    address_line2: str | None | UnsetType = UNSET
    city: str | None | UnsetType = UNSET
    region: str | None | UnsetType = UNSET
    postal_code: str | None | UnsetType = UNSET
    country: str | None | UnsetType = UNSET
    tags: list[str] | None | UnsetType = UNSET
    owner_id: str | UnsetType = UNSET
