"""Relay-style connections (forward paging) over the service layer's pages."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

import strawberry

from backend.records.listing import ListQuery, cursor_for
from backend.records.service import Page, Record

NodeT = TypeVar("NodeT")


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    node: NodeT
    cursor: str


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def connection(edges: list[Edge[NodeT]], has_next: bool, has_previous: bool) -> Connection[NodeT]:
    """A page of edges with its PageInfo (start and end cursors from the edges)."""
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


def to_connection(
    page: Page, query: ListQuery, to_node: Callable[[Record], NodeT], has_previous: bool
) -> Connection[NodeT]:
    edges = [Edge(node=to_node(r), cursor=cursor_for(query, r)) for r in page.items]
    return connection(edges, page.next_cursor is not None, has_previous)


def sort_key(field: Enum | None, direction: SortDirection) -> str | None:
    if field is None:
        return None
    return ("-" if direction is SortDirection.DESC else "") + str(field.value)
