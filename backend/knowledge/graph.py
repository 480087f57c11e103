"""A call script's graph: ordered steps, each a prompt with options; an option leads to
another step (`next`) or ends the script (`end`, the outcome). The first step is the start.

Checked on write, each problem naming its step: duplicate step keys or option values, an
option naming an unknown step (or both/neither of next and end), a step no answer path
reaches, and a step from which no end can be reached (a cycle without an exit).
"""

from __future__ import annotations

import re
from typing import Any

from backend.errors import FieldProblem, ValidationFailed

MAX_STEPS, MAX_OPTIONS, MAX_PROMPT, MAX_LABEL = 100, 20, 2000, 200
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit


def check_steps(steps: Any) -> list[dict[str, Any]]:
    """The steps, normalised; ValidationFailed naming every step at fault."""
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationFailed.one("steps", "invalid", f"a list of 1-{MAX_STEPS} steps")
    problems: list[FieldProblem] = []
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        key = step.get("key") if isinstance(step, dict) else None
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(FieldProblem(f"{where}.key", "invalid_key", "a-z, 0-9, _ or -"))
            continue
        where = f"steps.{key}"
        if key in seen:
            problems.append(FieldProblem(where, "duplicate_step", f"step {key!r} twice"))
            continue
        seen.add(key)
        if not _text(step.get("prompt"), MAX_PROMPT):
            problems.append(FieldProblem(f"{where}.prompt", "required", "the text to read"))
        options = step.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
            problems.append(FieldProblem(f"{where}.options", "invalid", f"1-{MAX_OPTIONS} options"))
            continue
        clean_options, values = [], set()
        for option in options:
            value = option.get("value") if isinstance(option, dict) else None
            if not isinstance(value, str) or not _KEY.match(value):
                problems.append(
                    FieldProblem(f"{where}.options", "invalid_value", "a-z, 0-9, _ or -")
                )
                continue
            if value in values:
                problems.append(
                    FieldProblem(f"{where}.options", "duplicate_option", f"option {value!r} twice")
                )
                continue
            values.add(value)
            target, end = option.get("next"), option.get("end")
            if (target is None) == (end is None):
                problems.append(
                    FieldProblem(
                        f"{where}.options.{value}", "next_or_end", "exactly one of next and end"
                    )
                )
                continue
            if end is not None and not _text(end, MAX_LABEL):
                problems.append(FieldProblem(f"{where}.options.{value}", "invalid_end", "a text"))
                continue
            label = option.get("label", value)
            if not _text(label, MAX_LABEL):
                problems.append(FieldProblem(f"{where}.options.{value}", "invalid_label", "a text"))
                continue
            kept = {"value": value, "label": label}
            kept |= {"next": target} if target is not None else {"end": end}
            clean_options.append(kept)
        clean.append({"key": key, "prompt": step.get("prompt"), "options": clean_options})
    if problems:
        raise ValidationFailed.of(problems)
    _check_links(clean)
    return clean


def _check_links(steps: list[dict[str, Any]]) -> None:
    by_key = {s["key"]: s for s in steps}
    problems = [
        FieldProblem(
            f"steps.{s['key']}.options.{o['value']}",
            "unknown_step",
            f"step {s['key']!r}: option {o['value']!r} leads to unknown step {o['next']!r}",
        )
        for s in steps
        for o in s["options"]
        if "next" in o and o["next"] not in by_key
    ]
    if problems:
        raise ValidationFailed.of(problems)
    reached, todo = {steps[0]["key"]}, [steps[0]["key"]]
    while todo:
        for o in by_key[todo.pop()]["options"]:
            if "next" in o and o["next"] not in reached:
                reached.add(o["next"])
                todo.append(o["next"])
    # Steps that can end: those with an end option, then those leading to one (fixpoint).
    ends = {s["key"] for s in steps if any("end" in o for o in s["options"])}
    grew = True
    while grew:
        more = {s["key"] for s in steps if any(o.get("next") in ends for o in s["options"])} - ends
        ends |= more
        grew = bool(more)
    for s in steps:
        if s["key"] not in reached:
            problems.append(
                FieldProblem(
                    f"steps.{s['key']}", "unreachable_step", f"no path reaches step {s['key']!r}"
                )
            )
        elif s["key"] not in ends:
            problems.append(
                FieldProblem(
                    f"steps.{s['key']}",
                    "no_end",
                    f"step {s['key']!r} never reaches an end (a cycle without an exit)",
                )
            )
    if problems:
        raise ValidationFailed.of(problems)


def follow(steps: list[dict[str, Any]], answers: Any) -> tuple[list[str], str | None]:
    """The steps visited and the end reached (None: the run stopped before an end)."""
    if not isinstance(answers, list) or len(answers) > MAX_STEPS * 2:
        raise ValidationFailed.one("answers", "invalid", "a list of {step, option}")
    by_key = {s["key"]: s for s in steps}
    path: list[str] = []
    expected: str | None = steps[0]["key"]
    end: str | None = None
    for i, answer in enumerate(answers):
        step = answer.get("step") if isinstance(answer, dict) else None
        option = answer.get("option") if isinstance(answer, dict) else None
        if expected is None:
            raise ValidationFailed.one(
                f"answers[{i}]", "after_end", f"the script ended ({end!r}) before this answer"
            )
        if step != expected:
            raise ValidationFailed.one(
                f"answers[{i}].step", "off_path", f"the next step is {expected!r}, not {step!r}"
            )
        chosen = next((o for o in by_key[step]["options"] if o["value"] == option), None)
        if chosen is None:
            allowed = ", ".join(o["value"] for o in by_key[step]["options"])
            raise ValidationFailed.one(
                f"answers[{i}].option",
                "unknown_option",
                f"step {step!r} has no option {option!r} (options: {allowed})",
            )
        path.append(step)
        expected, end = chosen.get("next"), chosen.get("end")
    return path, end
