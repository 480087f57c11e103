"""Wire shapes of an account for REST (types only; rules live in service.py's field specs)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class AccountCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    industry: str | UnsetType | None = UNSET
    website: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    address_line1: str | UnsetType | None = UNSET
    address_line2: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    region: str | UnsetType | None = UNSET
    postal_code: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType | None = UNSET


class AccountUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | UnsetType = UNSET
    industry: str | UnsetType | None = UNSET
    website: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    address_line1: str | UnsetType | None = UNSET
    address_line2: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    region: str | UnsetType | None = UNSET
    postal_code: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType | None = UNSET
    owner_id: str | UnsetType = UNSET
