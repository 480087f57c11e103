"""Who may do what with knowledge articles and call scripts (policies/roles.toml).

Objects: `article` (read: the published articles), `article.internal` and `article.public`
(create/update/delete an article of that audience; whoever may edit an audience also reads
its drafts), `call_script` (read, create, update, delete) and `script_run` (create).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.context import RequestContext
from backend.errors import Forbidden
from backend.knowledge.models import AUDIENCES
from backend.policy.engine import policies, user_subject


@dataclass(frozen=True)
class KnowledgeAccess:
    reads_published: bool
    # The audiences whose articles the caller may write (and whose drafts it may read).
    edits: dict[str, frozenset[str]]  # action -> audiences

    def may(self, action: str, audience: str) -> bool:
        return audience in self.edits.get(action, frozenset())

    @property
    def draft_audiences(self) -> frozenset[str]:
        return self.edits.get("update", frozenset()) | self.edits.get("create", frozenset())


async def knowledge_access(ctx: RequestContext, conn: AsyncConnection) -> KnowledgeAccess:
    policy = await policies.get(conn, ctx.tenant_id)
    subject = user_subject(ctx.user_id)
    edits = {
        action: frozenset(a for a in AUDIENCES if policy.allows(subject, f"article.{a}", action))
        for action in ("create", "update", "delete")
    }
    return KnowledgeAccess(policy.allows(subject, "article", "read"), edits)


async def require(ctx: RequestContext, conn: AsyncConnection, obj: str, action: str) -> None:
    policy = await policies.get(conn, ctx.tenant_id)
    if not policy.allows(user_subject(ctx.user_id), obj, action):
        raise Forbidden(f"you may not {action} {obj.replace('_', ' ')}s", code="forbidden")
