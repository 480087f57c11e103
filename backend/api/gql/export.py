"""Write the schema's SDL to graphql/schema.graphql: `python -m backend.api.gql.export`."""

from __future__ import annotations

from pathlib import Path

from backend.api.gql.schema import schema

SDL_PATH = Path(__file__).resolve().parents[3] / "graphql" / "schema.graphql"


def sdl() -> str:
    return schema.as_str() + "\n"


if __name__ == "__main__":
    SDL_PATH.write_text(sdl())
    print(f"wrote {SDL_PATH}")
