"""Field specifications and the validation every write goes through (for both API skins)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from backend.errors import FieldProblem, ValidationFailed

FieldKind = Literal["text", "email", "url", "phone", "uuid", "tags", "country"]

MAX_TAGS = 50
MAX_TAG_LENGTH = 50
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
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


def _check_kind(spec: FieldSpec, value: Any) -> tuple[Any, FieldProblem | None]:
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
    return text, None


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
