"""Postal address columns and field specs shared by accounts and contacts."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.records.fields import FieldSpec


class AddressMixin:
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2


ADDRESS_FIELDS = (
    FieldSpec("address_line1", max_length=200),
    FieldSpec("address_line2", max_length=200),
    FieldSpec("city", max_length=100),
    FieldSpec("region", max_length=100),
    FieldSpec("postal_code", max_length=20),
    FieldSpec("country", kind="country", max_length=2, description="ISO 3166-1 alpha-2, e.g. DE."),
)
