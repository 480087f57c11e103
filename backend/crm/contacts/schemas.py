"""Wire shapes of a contact for REST (types only; rules live in service.py's field specs)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    last_name: str
    first_name: str | None | UnsetType = UNSET
    email: str | None | UnsetType = UNSET
    phone: str | None | UnsetType = UNSET
    mobile_phone: str | None | UnsetType = UNSET
    title: str | None | UnsetType = UNSET
    account_id: str | None | UnsetType = UNSET
    address_line1: str | None | UnsetType = UNSET
    address_line2: str | None | UnsetType = UNSET
    city: str | None | UnsetType = UNSET
    region: str | None | UnsetType = UNSET
    postal_code: str | None | UnsetType = UNSET
    country: str | None | UnsetType = UNSET
    notes: str | None | UnsetType = UNSET
    tags: list[str] | None | UnsetType = UNSET


class ContactUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    last_name: str | UnsetType = UNSET
    first_name: str | None | UnsetType = UNSET
    email: str | None | UnsetType = UNSET
    phone: str | None | UnsetType = UNSET
    mobile_phone: str | None | UnsetType = UNSET
    title: str | None | UnsetType = UNSET
    account_id: str | None | UnsetType = UNSET
    address_line1: str | None | UnsetType = UNSET
    address_line2: str | None | UnsetType = UNSET
    city: str | None | UnsetType = UNSET
    region: str | None | UnsetType = UNSET
    postal_code: str | None | UnsetType = UNSET
    country: str | None | UnsetType = UNSET
    notes: str | None | UnsetType = UNSET
    tags: list[str] | None | UnsetType = UNSET
    owner_id: str | UnsetType = UNSET
