"""The REST API: auth, health, and one router per registered entity."""

from __future__ import annotations

from litestar import Request, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from backend.api.auth_header import authenticate
from backend.api.rest.agenda import AGENDA_CONTROLLERS
from backend.api.rest.auth import AuthController
from backend.api.rest.calendar import CalendarFeedController, VCardController, calendar_feed
from backend.api.rest.cases import CASE_CONTROLLERS
from backend.api.rest.custom_fields import CustomFieldsController
from backend.api.rest.exports import ExportRulesController, ExportsController
from backend.api.rest.health import health, ready
from backend.api.rest.history import HistoryController
from backend.api.rest.imports import ImportsController
from backend.api.rest.knowledge import KNOWLEDGE_CONTROLLERS, PublicArticlesController
from backend.api.rest.lookup import LookupController, TenantSettingsController
from backend.api.rest.oauth import OAuthController
from backend.api.rest.pipelines import PipelinesController, SalesController
from backend.api.rest.policy import RolesController, TeamsController, UserAccessController
from backend.api.rest.quotes import accept as accept_quote
from backend.api.rest.records import record_router
from backend.api.rest.sales import SALES_CONTROLLERS
from backend.api.rest.security import SECURITY_CONTROLLERS
from backend.api.rest.selfservice import PUBLIC_SELF_SERVICE, SELF_SERVICE_CONTROLLERS
from backend.api.rest.sync import SYNC_CONTROLLERS
from backend.context import RequestContext
from backend.crm.registry import SERVICES


async def rest_context(request: Request, state: State) -> RequestContext:  # type: ignore[type-arg]
    return await authenticate(
        state.services,
        request.headers.get("authorization"),
        "rest",
        request.headers.get("x-request-id"),
    )


def rest_handlers() -> list[ControllerRouterHandler]:
    provide = Provide(rest_context)
    return [
        AuthController,
        health,
        ready,
        # Every registered entity, in registry order.
        *(record_router(s, s.spec.graphql_name, provide) for s in SERVICES.values()),
        OAuthController,
        calendar_feed,
        PublicArticlesController,
        *PUBLIC_SELF_SERVICE,
        Router(
            path="/",
            route_handlers=[
                *SECURITY_CONTROLLERS,
                HistoryController,
                RolesController,
                CustomFieldsController,
                PipelinesController,
                SalesController,
                UserAccessController,
                TeamsController,
                LookupController,
                TenantSettingsController,
                CalendarFeedController,
                *AGENDA_CONTROLLERS,
                *KNOWLEDGE_CONTROLLERS,
                VCardController,
                *SYNC_CONTROLLERS,
                *SALES_CONTROLLERS,
                *CASE_CONTROLLERS,
                *SELF_SERVICE_CONTROLLERS,
                ExportsController,
                ExportRulesController,
                ImportsController,
                accept_quote,
            ],
            dependencies={"ctx": provide},
        ),
    ]
