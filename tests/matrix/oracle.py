"""What policies/roles.toml allows, read independently of backend/policy, so a bug in the
engine cannot hide behind the same bug in the expectation: glob objects over "entity" and
"entity.field", a deny beats an allow."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

ROLES_TOML = Path(__file__).parents[2] / "policies" / "roles.toml"
BUILTIN: dict[str, dict[str, Any]] = tomllib.loads(ROLES_TOML.read_text())
Rules = Sequence[Sequence[str]]


def allows(rules: Rules, obj: str, action: str) -> bool:
    def matches(effect: str) -> bool:
        return any(e == effect and fnmatchcase(obj, o) and a in ("*", action) for e, o, a in rules)

    return matches("allow") and not matches("deny")


def field_allows(rules: Rules, entity: str, field: str, action: str) -> bool:
    return allows(rules, entity, action) and allows(rules, f"{entity}.{field}", action)


def rules_of(role: str, custom: Mapping[str, Mapping[str, Any]] | None = None) -> Rules:
    roles = {**BUILTIN, **(custom or {})}
    rules: Rules = roles[role]["rules"]
    return rules
