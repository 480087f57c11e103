"""Wire shapes of a contact for REST (types only; rules live in service.py's field specs)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    last_name: str
    first_name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    mobile_phone: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    account_id: str | UnsetType | None = UNSET
    address_line1: str | UnsetType | None = UNSET
    address_line2: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    region: str | UnsetType | None = UNSET
    postal_code: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    notes: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType | None = UNSET


class ContactUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    last_name: str | UnsetType = UNSET
    first_name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    mobile_phone: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    account_id: str | UnsetType | None = UNSET
    address_line1: str | UnsetType | None = UNSET
    address_line2: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    region: str | UnsetType | None = UNSET
    postal_code: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    notes: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType | None = UNSET
    owner_id: str | UnsetType = UNSET
