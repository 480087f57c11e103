"""REST for the service side beyond the case records themselves (those come from the registry):
assign and escalate a case; queues, assignment rules and SLA policies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from backend.api.rest.records import etag
from backend.context import RequestContext
from backend.crm.cases import actions, setup
from backend.crm.cases.service import cases
from backend.errors import ValidationFailed
from backend.knowledge.search import suggest_articles

Ctx = NamedDependency[RequestContext]
Body = JSONBody[dict[str, Any]]


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "invalid_type", "must be a JSON object")
    return data


class CaseActionsController(Controller):
    path = "/api/v1/cases/{case_id:str}"
    tags = ["cases"]

    @post("/assign", summary="Assign a case to a queue and/or an agent", status_code=200)
    async def assign(self, ctx: Ctx, case_id: FromPath[str], data: Body) -> Response[Any]:
        record = await actions.assign(ctx, case_id, _object(data))
        return Response(record, headers={"ETag": etag(record)})

    @post("/escalate", summary="Escalate a case as its SLA policy says", status_code=200)
    async def escalate(self, ctx: Ctx, case_id: FromPath[str]) -> Response[Any]:
        record = await actions.escalate(ctx, case_id)
        return Response(record, headers={"ETag": etag(record)})

    @get(
        "/suggestions",
        summary="The knowledge articles that best answer a case (its subject and description)",
    )
    async def suggestions(self, ctx: Ctx, case_id: FromPath[str]) -> dict[str, Any]:
        # Read through the record service: a case the caller may not read is a 404, and a
        # field withheld from the caller does not steer the ranking.
        case = await cases.get(ctx, case_id)
        text = "\n".join(str(case.get(f) or "") for f in ("subject", "description"))
        return {"items": await suggest_articles(ctx, ctx.tenant_id, text)}


class QueuesController(Controller):
    path = "/api/v1/queues"
    tags = ["cases"]

    @get("/", summary="The tenant's case queues and their members")
    async def list_queues(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": await setup.list_queues(ctx)}

    @post("/", summary="Create a queue (tenant admins)")
    async def create(self, ctx: Ctx, data: Body) -> dict[str, Any]:
        return await setup.save_queue(ctx, _object(data))

    @patch("/{queue_id:str}", summary="Rename a queue or replace its members (tenant admins)")
    async def change(self, ctx: Ctx, queue_id: FromPath[str], data: Body) -> dict[str, Any]:
        return await setup.save_queue(ctx, _object(data), queue_id)

    @delete("/{queue_id:str}", summary="Delete a queue", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, ctx: Ctx, queue_id: FromPath[str]) -> None:
        await setup.delete_row(ctx, setup.queues_table, queue_id)


class AssignmentRulesController(Controller):
    path = "/api/v1/case-assignment-rules"
    tags = ["cases"]

    @get("/", summary="The ordered rules routing new cases")
    async def list_rules(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": await setup.list_rules(ctx)}

    @post("/", summary="Add a rule (tenant admins)")
    async def create(self, ctx: Ctx, data: Body) -> dict[str, Any]:
        return await setup.create_rule(ctx, _object(data))

    @delete("/{rule_id:str}", summary="Delete a rule", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, ctx: Ctx, rule_id: FromPath[str]) -> None:
        await setup.delete_row(ctx, setup.rules_table, rule_id)


class SlaPoliciesController(Controller):
    path = "/api/v1/sla-policies"
    tags = ["cases"]

    @get("/", summary="The SLA policies, by priority")
    async def list_policies(self, ctx: Ctx) -> dict[str, Any]:
        return {"items": await setup.list_policies(ctx)}

    @post("/", summary="Create a priority's SLA policy (tenant admins)")
    async def create(self, ctx: Ctx, data: Body) -> dict[str, Any]:
        return await setup.save_policy(ctx, _object(data))

    @put("/{policy_id:str}", summary="Replace an SLA policy (tenant admins)")
    async def replace(self, ctx: Ctx, policy_id: FromPath[str], data: Body) -> dict[str, Any]:
        return await setup.save_policy(ctx, _object(data), policy_id)

    @delete("/{policy_id:str}", summary="Delete an SLA policy", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, ctx: Ctx, policy_id: FromPath[str]) -> None:
        await setup.delete_row(ctx, setup.policies_table, policy_id)


CASE_CONTROLLERS = [
    CaseActionsController,
    QueuesController,
    AssignmentRulesController,
    SlaPoliciesController,
]
