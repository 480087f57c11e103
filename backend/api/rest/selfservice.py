"""REST for web self-service and satisfaction. Unauthenticated, under /public/{slug}: submit a
case, its status page and replies by secret link, answer a survey. Signed in: agents' replies
on a case, a case's survey link (shown once) or answer, and the service metrics.
Parse -> call a service -> shape."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.api.origin import request_origin
from backend.context import RequestContext
from backend.crm.cases import metrics, replies, selfservice, surveys
from backend.errors import ValidationFailed

Ctx = NamedDependency[RequestContext]
Body = JSONBody[dict[str, Any]]
AnyRequest = Request[Any, Any, Any]


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "invalid_type", "must be a JSON object")
    return data


class PublicCasesController(Controller):
    path = "/public/{tenant_slug:str}/cases"
    tags = ["self-service"]

    @post(
        "/",
        summary="Submit a case (no sign-in; rate limited; body ≤ 16 KB)",
        status_code=201,
        request_max_body_size=selfservice.MAX_BODY_BYTES,
    )
    async def submit(
        self, state: State, request: AnyRequest, tenant_slug: FromPath[str], data: Body
    ) -> dict[str, str]:
        source = request_origin(request).ip
        return await selfservice.submit_case(state.services.db, tenant_slug, _object(data), source)

    @get("/status/{token:str}", summary="A submitted case's status and public replies")
    async def status(
        self, state: State, request: AnyRequest, tenant_slug: FromPath[str], token: FromPath[str]
    ) -> dict[str, Any]:
        source = request_origin(request).ip
        return await selfservice.case_status(state.services.db, tenant_slug, token, source)

    @post(
        "/status/{token:str}/replies",
        summary="Reply to a submitted case",
        status_code=201,
        request_max_body_size=selfservice.MAX_BODY_BYTES,
    )
    async def reply(
        self,
        state: State,
        request: AnyRequest,
        tenant_slug: FromPath[str],
        token: FromPath[str],
        data: Body,
    ) -> dict[str, Any]:
        source = request_origin(request).ip
        return await selfservice.customer_reply(
            state.services.db, tenant_slug, token, _object(data), source
        )


class PublicSurveysController(Controller):
    path = "/public/{tenant_slug:str}/surveys"
    tags = ["self-service"]

    @post(
        "/{token:str}",
        summary="Answer a satisfaction survey (once, within 30 days)",
        status_code=200,
        request_max_body_size=selfservice.MAX_BODY_BYTES,
    )
    async def answer(
        self,
        state: State,
        request: AnyRequest,
        tenant_slug: FromPath[str],
        token: FromPath[str],
        data: Body,
    ) -> dict[str, Any]:
        source = request_origin(request).ip
        return await surveys.answer_survey(
            state.services.db, tenant_slug, token, _object(data), source
        )


class CaseFeedbackController(Controller):
    path = "/api/v1/cases/{case_id:str}"
    tags = ["cases"]

    @post("/replies", summary="Reply on a case: public (the submitter sees it) or internal")
    async def add_reply(self, ctx: Ctx, case_id: FromPath[str], data: Body) -> dict[str, Any]:
        return await replies.add_reply(ctx, case_id, _object(data))

    @get("/replies", summary="A case's replies, public and internal, and its web submitter")
    async def list_replies(self, ctx: Ctx, case_id: FromPath[str]) -> dict[str, Any]:
        return await replies.list_replies(ctx, case_id)

    @get("/survey", summary="A resolved case's survey: its link the first time, then its answer")
    async def survey(
        self,
        ctx: Ctx,
        case_id: FromPath[str],
        kind: Annotated[
            str | None, QueryParameter(description="csat (default) or nps; first call only")
        ] = None,
    ) -> dict[str, Any]:
        return await surveys.case_survey(ctx, case_id, kind)


class ServiceMetricsController(Controller):
    path = "/api/v1/service"
    tags = ["cases"]

    @get("/metrics", summary="CSAT, NPS, response and resolution times, SLA attainment")
    async def service_metrics(
        self,
        ctx: Ctx,
        from_: Annotated[
            str | None, QueryParameter(name="from", description="YYYY-MM-DD, inclusive")
        ] = None,
        to: Annotated[str | None, QueryParameter(description="YYYY-MM-DD, inclusive")] = None,
        group_by: Annotated[
            str | None, QueryParameter(description="agent (default), queue or month")
        ] = None,
    ) -> dict[str, Any]:
        return await metrics.service_metrics(ctx, from_, to, group_by)


PUBLIC_SELF_SERVICE = (PublicCasesController, PublicSurveysController)
SELF_SERVICE_CONTROLLERS = (CaseFeedbackController, ServiceMetricsController)
