"""Field specifications and the validation every write goes through (for both API skins)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from backend.errors import FieldProblem, ValidationFailed

FieldKind = Literal[
    "text",
    "email",
    "url",
    "phone",
    "uuid",
    "tags",
    "country",
    "currency",
    "choice",
    "decimal",
    "integer",
    "date",
    "datetime",
    "boolean",
]

# The description of every entity's owner_id (record scope "own" follows it).
OWNER = "The user who owns this record."
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # only this form (no week dates, no times)
# ISO 8601 with a UTC offset (or Z), so an instant is never ambiguous across time zones.
_DATETIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# PostgreSQL text cannot hold NUL; other C0 controls (but tab/newline) have no place in CRM data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind = "text"
    max_length: int | None = None
    required: bool = False  # must be present on create and can never be null
    on_create: bool = True  # may be written on create
    on_update: bool = True  # may be written on update
    multiline: bool = False
    choices: tuple[str, ...] = ()  # kind "choice": the allowed values
    minimum: int | None = None  # kinds "decimal" and "integer": inclusive bounds
    maximum: int | None = None
    scale: int = 2  # kind "decimal": digits after the point (money: cents)
    description: str = ""  # for API documentation (the GraphQL SDL)


def _problem(field: str, code: str, message: str) -> FieldProblem:
    return FieldProblem(field, code, message)


def _check_text(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    if not isinstance(value, str):
        return None, _problem(spec.name, "invalid_type", "must be a string")
    if spec.max_length is not None and len(value) > spec.max_length:
        return None, _problem(
            spec.name, "too_long", f"must be at most {spec.max_length} characters"
        )
    controls = _CONTROL.search(value)
    if controls or (not spec.multiline and ("\n" in value or "\r" in value)):
        return None, _problem(spec.name, "invalid_characters", "contains control characters")
    if spec.required and not value.strip():
        return None, _problem(spec.name, "required", "must not be blank")
    return value, None


def _out_of_range(spec: FieldSpec, value: Decimal | int) -> FieldProblem | None:
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        low = "" if spec.minimum is None else f"at least {spec.minimum}"
        high = "" if spec.maximum is None else f"at most {spec.maximum}"
        return _problem(
            spec.name, "out_of_range", f"must be {' and '.join(filter(None, (low, high)))}"
        )
    return None


def _check_number(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    """Kinds "integer" (a JSON integer) and "decimal" (a JSON number or a decimal string, so
    money never passes through a binary float on the client's side if it does not want it)."""
    if isinstance(value, bool):  # a bool is an int to Python, never to a client
        return None, _problem(spec.name, "invalid_type", "must be a number")
    if spec.kind == "integer":
        if not isinstance(value, int):
            return None, _problem(spec.name, "invalid_type", "must be an integer")
        return (None, problem) if (problem := _out_of_range(spec, value)) else (value, None)
    if isinstance(value, float) and not math.isfinite(value):
        return None, _problem(spec.name, "invalid_number", "must be a finite number")
    if not isinstance(value, int | float | str | Decimal) or (
        isinstance(value, str) and len(value) > 40
    ):
        return None, _problem(spec.name, "invalid_type", "must be a number or a decimal string")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None, _problem(spec.name, "invalid_number", "must be a decimal number")
    if not number.is_finite():
        return None, _problem(spec.name, "invalid_number", "must be a finite number")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > spec.scale:
        return None, _problem(
            spec.name, "too_precise", f"must have at most {spec.scale} digits after the point"
        )
    if (problem := _out_of_range(spec, number)) is not None:
        return None, problem
    return number.quantize(Decimal(1).scaleb(-spec.scale)), None


def _check_date(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    if isinstance(value, date):
        return value, None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None, _problem(spec.name, "invalid_date", "must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, _problem(spec.name, "invalid_date", "must be a date, YYYY-MM-DD")


def _check_datetime(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    """Kind "datetime": an instant (stored timestamptz); a naive time is refused."""
    message = "must be an ISO 8601 date-time with an offset, e.g. 2027-01-15T09:30:00+01:00"
    if isinstance(value, datetime):
        parsed: datetime | None = value
    elif isinstance(value, str) and _DATETIME.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        return None, _problem(spec.name, "invalid_datetime", message)
    return parsed, None


def _check_kind(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    if spec.kind in ("integer", "decimal"):
        return _check_number(spec, value)
    if spec.kind == "date":
        return _check_date(spec, value)
    if spec.kind == "datetime":
        return _check_datetime(spec, value)
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            return None, _problem(spec.name, "invalid_type", "must be true or false")
        return value, None
    if spec.kind == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            return None, _problem(
                spec.name, "invalid_choice", f"must be one of: {', '.join(spec.choices)}"
            )
        return value, None
    if spec.kind == "uuid":
        if isinstance(value, uuid.UUID):
            return value, None
        if not isinstance(value, str):
            return None, _problem(spec.name, "invalid_type", "must be a UUID string")
        try:
            return uuid.UUID(value), None
        except ValueError:
            return None, _problem(spec.name, "invalid_uuid", "must be a UUID")
    if spec.kind == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            return None, _problem(spec.name, "invalid_type", "must be a list of strings")
        if len(value) > MAX_TAGS:
            return None, _problem(spec.name, "too_many", f"at most {MAX_TAGS} tags")
        tags: list[str] = []
        for tag in value:
            tag = tag.strip()
            if not tag or len(tag) > MAX_TAG_LENGTH or _CONTROL.search(tag):
                return None, _problem(
                    spec.name, "invalid_tag", f"tags are 1-{MAX_TAG_LENGTH} printable characters"
                )
            if tag not in tags:
                tags.append(tag)
        return tags, None
    text, problem = _check_text(spec, value)
    if problem is not None:
        return None, problem
    if spec.kind == "email":
        try:
            return validate_email(text, check_deliverability=False).normalized, None
        except EmailNotValidError:
            return None, _problem(spec.name, "invalid_email", "must be an email address")
    if spec.kind == "url":
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unbalanced IPv6 bracket: "http://[::1"
            return None, _problem(spec.name, "invalid_url", "must be an http(s) URL")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None, _problem(spec.name, "invalid_url", "must be an http(s) URL")
    if spec.kind == "phone" and not _PHONE.match(text):
        return None, _problem(spec.name, "invalid_phone", "must be a phone number")
    if spec.kind == "country" and not _COUNTRY.match(text):
        return None, _problem(
            spec.name, "invalid_country", "must be an ISO 3166-1 alpha-2 code, e.g. DE"
        )
    if spec.kind == "currency" and not _CURRENCY.match(text):
        return None, _problem(spec.name, "invalid_currency", "must be an ISO 4217 code, e.g. EUR")
    return text, None


def check_value(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
    """One non-null value checked against `spec`: (cleaned value, None) or (None, problem).
    Custom fields (backend/custom_fields/values.py) check their values with this too."""
    return _check_kind(spec, value)


def validate_changes(
    fields: Mapping[str, FieldSpec], data: Mapping[str, Any], *, creating: bool
) -> dict[str, Any]:
    """Check every provided field; return the cleaned values or raise with all problems."""
    problems: list[FieldProblem] = []
    clean: dict[str, Any] = {}
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            problems.append(_problem(name, "unknown_field", "is not a field of this record"))
            continue
        if not (spec.on_create if creating else spec.on_update):
            problems.append(_problem(name, "read_only", "cannot be written here"))
            continue
        if value is None:
            if spec.required:
                problems.append(_problem(name, "required", "must not be null"))
            elif spec.kind == "tags":
                clean[name] = []
            else:
                clean[name] = None
            continue
        checked, problem = _check_kind(spec, value)
        if problem is not None:
            problems.append(problem)
        else:
            clean[name] = checked
    if creating:
        for spec in fields.values():
            if spec.required and spec.on_create and spec.name not in data:
                problems.append(_problem(spec.name, "required", "is required"))
    if problems:
        raise ValidationFailed.of(problems)
    return clean
