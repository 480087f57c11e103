"""The demo's sales force: two teams, each a sales manager and a few salespeople, all signing
in with the admin's password."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backend.context import Principal, RequestContext
from backend.db.session import Database
from backend.policy.teams import create_team, set_members
from backend.tenants.service import create_user

TEAMS = ("North", "South")
MANAGERS = (("Greta", "Hansen"), ("Luca", "Rossi"))
SALESPEOPLE = (
    ("Ben", "Moreau"),
    ("Ines", "Costa"),
    ("Nils", "Larsen"),
    ("Tara", "Okafor"),
    ("Umar", "Varga"),
    ("Zoe", "Quinn"),
)


@dataclass(frozen=True)
class Rep:
    name: str
    email: str
    role: str
    team: str
    ctx: RequestContext


def as_user(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> RequestContext:
    """Writes as this user: records are theirs, in their scope and field policy."""
    return RequestContext(
        principal=Principal(user_id=user_id, tenant_id=tenant_id), db=db, channel="cli"
    )


async def seed_sales_force(
    admin: RequestContext, *, slug: str, domain: str, password: str, per_team: int
) -> list[Rep]:
    db, tenant_id = admin.db, admin.tenant_id
    reps: list[Rep] = []
    people = iter(SALESPEOPLE)
    for team_name, manager in zip(TEAMS, MANAGERS, strict=True):
        members = [(manager, "sales_manager")]
        members += [(next(people), "salesperson") for _ in range(per_team)]
        team = await create_team(admin, f"{team_name} sales")
        ids: list[uuid.UUID] = []
        for (first, last), role in members:
            email = f"{first}.{last}@{domain}".lower()
            user_id = await create_user(
                db,
                tenant_slug=slug,
                email=email,
                password=password,
                name=f"{first} {last}",
                roles=[role],
            )
            ids.append(user_id)
            reps.append(
                Rep(f"{first} {last}", email, role, team.name, as_user(db, tenant_id, user_id))
            )
        await set_members(admin, team.id, ids)
    return reps
