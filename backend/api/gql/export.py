"""Write the schema's SDL to graphql/schema.graphql: `python -m backend.api.gql.export`.

The published file is a contract clients diff. Its fields keep the order they were published
in, and new fields follow the existing ones of their type, so that an additive change (a new
entity, a new field) shows in the diff as additions only, wherever in the code it was built."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    ObjectTypeDefinitionNode,
    parse,
)
from graphql.language import InputObjectTypeDefinitionNode, InterfaceTypeDefinitionNode

from backend.api.gql.schema import schema

SDL_PATH = Path(__file__).resolve().parents[3] / "graphql" / "schema.graphql"
_WITH_FIELDS = (
    ObjectTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
)


def published_order(path: Path = SDL_PATH) -> dict[str, list[str]]:
    """The field names of each type, in the order the published SDL lists them."""
    if not path.exists():
        return {}
    document = parse(path.read_text(encoding="utf-8"))
    return {
        d.name.value: [f.name.value for f in d.fields or ()]
        for d in document.definitions
        if isinstance(d, _WITH_FIELDS)
    }


@contextmanager
def _ordered(order: Mapping[str, list[str]]) -> Iterator[None]:
    """The schema's field maps in the published order while printing (restored after)."""
    saved = {}
    for name, type_ in schema._schema.type_map.items():
        known = order.get(name)
        if not known or not isinstance(
            type_, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType
        ):
            continue
        fields = type_.fields
        rank = {field: i for i, field in enumerate(known)}
        saved[name] = fields
        type_.__dict__["fields"] = dict(
            sorted(fields.items(), key=lambda item: rank.get(item[0], len(rank)))
        )
    try:
        yield
    finally:
        for name, fields in saved.items():
            schema._schema.type_map[name].__dict__["fields"] = fields


def sdl() -> str:
    with _ordered(published_order()):
        return schema.as_str() + "\n"


if __name__ == "__main__":
    SDL_PATH.write_text(sdl())
    print(f"wrote {SDL_PATH}")
