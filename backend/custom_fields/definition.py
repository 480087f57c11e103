"""One custom field definition as the rest of the code sees it, and the tenant limits."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

TYPES = (
    "text",
    "long_text",
    "number",
    "decimal",
    "date",
    "datetime",
    "boolean",
    "single_choice",
    "multi_choice",
    "email",
    "phone",
    "url",
    "reference",
)
TEXT_TYPES = frozenset({"text", "long_text", "email", "phone", "url"})  # searched by `q`
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a lowercase slug: `region_code`

MAX_FIELDS_PER_ENTITY = 50
MAX_VALUE_BYTES = 2048  # one value, as compact JSON
MAX_RECORD_BYTES = 16384  # all of a record's custom values, as compact JSON
MAX_CHOICES = 100
MAX_CHOICE_LENGTH = 100
DEFAULT_TEXT_LENGTH = 255
MAX_TEXT_LENGTH = 2000  # long_text; stays under MAX_VALUE_BYTES for ASCII text
DECIMAL_SCALE = 6


@dataclass(frozen=True)
class CustomFieldDef:
    id: uuid.UUID
    entity: str
    key: str
    label: str
    type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    help_text: str | None = None
    target: str | None = None

    @property
    def name(self) -> str:
        """The field's name in records, errors, history, sync and exports."""
        return f"custom.{self.key}"

    @property
    def policy_object(self) -> str:
        return f"{self.entity}.cf_{self.key}"

    @classmethod
    def of(cls, row: Any) -> CustomFieldDef:
        return cls(
            id=row.id,
            entity=row.entity,
            key=row.key,
            label=row.label,
            type=row.type,
            required=row.required,
            choices=tuple(row.choices or ()),
            max_length=row.max_length,
            help_text=row.help_text,
            target=row.target,
        )


def custom_name(key: str) -> str:
    return f"custom.{key}"


def key_of(name: str) -> str | None:
    """`custom.region_code` -> `region_code`; None for a built-in field name."""
    return name.removeprefix("custom.") if name.startswith("custom.") else None
