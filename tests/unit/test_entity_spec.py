"""An EntitySpec is checked against its table when built: each disagreement is a ValueError
naming the entity and the field, at import rather than on the first request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import ARRAY, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from backend.records.fields import FieldSpec
from backend.records.spec import EntitySpec

STAGES = ("new", "qualified", "disqualified")


def lead_table() -> Table:
    return Table(
        "leads_probe",
        MetaData(),
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("tenant_id", UUID(as_uuid=True), nullable=False),
        Column("version", Integer, nullable=False),
        Column("company", String(200), nullable=False),
        Column("stage", String(12), nullable=False),
        Column("source", String(40)),
        Column("notes", Text),
        Column("score", Integer, nullable=False, server_default="0"),
        Column("tags", ARRAY(Text), nullable=False),
        Column("account_id", UUID(as_uuid=True)),
        Column("owner_id", UUID(as_uuid=True), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("converted_at", DateTime(timezone=True)),
    )


FIELDS = (
    FieldSpec("company", max_length=200, required=True),
    FieldSpec("stage", kind="choice", choices=STAGES, required=True),
    FieldSpec("source", max_length=40),
    FieldSpec("notes", max_length=10_000, multiline=True),
    FieldSpec("score", kind="integer"),
    FieldSpec("tags", kind="tags", required=True),
    FieldSpec("account_id", kind="uuid"),
    FieldSpec("owner_id", kind="uuid", on_create=False),
)


def lead(*fields: FieldSpec, table: Table | None = None, **options: Any) -> EntitySpec:
    """The probe lead spec, with `fields` replacing (or adding to) the good ones by name."""
    chosen = {f.name: f for f in FIELDS} | {f.name: f for f in fields}
    values: dict[str, Any] = {
        "search_columns": ("company",),
        "filter_columns": ("owner_id", "account_id"),
        "sort_columns": ("id", "created_at", "updated_at", "company"),
        "references": {"account_id": lead_table()},
    } | options
    return EntitySpec(
        name="lead",
        plural="leads",
        table=table if table is not None else lead_table(),
        fields=chosen,
        **values,
    )


def test_a_spec_that_agrees_with_its_table_builds() -> None:
    spec = lead()
    assert set(spec.fields) == {f.name for f in FIELDS}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: lead(FieldSpec("industry", max_length=80)),
            r"^lead\.industry: field names no column of table leads_probe$",
        ),
        (
            lambda: lead(FieldSpec("source", max_length=40, required=True)),
            r"^lead\.source: required, but column leads_probe\.source is nullable$",
        ),
        (
            lambda: lead(FieldSpec("company", max_length=200)),
            r"^lead\.company: optional on create, but column leads_probe\.company is NOT NULL",
        ),
        (
            lambda: lead(
                FieldSpec(
                    "stage", kind="choice", choices=(*STAGES, "nurturing_later"), required=True
                )
            ),
            r"^lead\.stage: choice 'nurturing_later' is longer than column leads_probe\.stage "
            r"\(12 characters\)$",
        ),
        (
            lambda: lead(FieldSpec("stage", kind="choice", required=True)),
            r"^lead\.stage: a choice field without choices$",
        ),
        (
            lambda: lead(FieldSpec("score", kind="choice", choices=STAGES)),
            r"^lead\.score: a choice field on a non-string column",
        ),
        (
            lambda: lead(FieldSpec("source", max_length=400)),
            r"^lead\.source: max_length 400 exceeds column leads_probe\.source \(40 characters\)$",
        ),
        (
            lambda: lead(search_columns=("company", "website")),
            r"^lead\.website: search column names no column of table leads_probe$",
        ),
        (
            lambda: lead(filter_columns=("owner_id", "campaign_id")),
            r"^lead\.campaign_id: filter column names no column of table leads_probe$",
        ),
        (
            lambda: lead(sort_columns=("id", "rating")),
            r"^lead\.rating: sort column names no column of table leads_probe$",
        ),
        (
            lambda: lead(sort_columns=("id", "converted_at")),
            r"^lead\.converted_at: sort column leads_probe\.converted_at is nullable \(only",
        ),
        (
            lambda: lead(references={"partner_id": lead_table()}),
            r"^lead\.partner_id: reference names no column of table leads_probe$",
        ),
    ],
    ids=[
        "unknown field",
        "required on nullable",
        "optional on not-null",
        "choice too long",
        "choice without choices",
        "choice on integer",
        "text longer than column",
        "unknown search column",
        "unknown filter column",
        "unknown sort column",
        "nullable sort column",
        "unknown reference",
    ],
)
def test_a_spec_that_disagrees_with_its_table_names_entity_and_field(
    build: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_field_keyed_under_another_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^lead\.firm: the field is named 'company'$"):
        EntitySpec(
            name="lead",
            plural="leads",
            table=lead_table(),
            fields={"firm": FieldSpec("company", max_length=200, required=True)},
        )
