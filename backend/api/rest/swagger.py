"""The Swagger UI page at /schema, with its scripts and styles served from the installed
`swagger-ui-bundle-v2` package (under /schema/swagger-ui/...), never from a CDN, and no
inline script: the page runs under a Content-Security-Policy that allows only 'self'."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.response import File
from litestar.router import Router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "swagger-ui"  # below the OpenAPI path: /schema/swagger-ui/<name>
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_FILES = (
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "oauth2-redirect.js",
    "favicon-32x32.png",
)
# Our start-up script: reads the document's URL from the page, so the page needs no inline JS.
INIT_SCRIPT = """"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset]
  });
});
"""
INIT = "caravan-init.js"
_CACHE = {"Cache-Control": "public, max-age=86400"}


def asset_directory() -> Path:
    return Path(str(swagger_ui_path))


def swagger_asset(name: FromPath[str]) -> Response[Any]:
    if name == INIT:
        return Response(INIT_SCRIPT, media_type=_MEDIA_TYPES[".js"], headers=_CACHE)
    if name not in _FILES:
        raise NotFoundException("no such file")
    return File(
        asset_directory() / name,
        media_type=_MEDIA_TYPES[Path(name).suffix],
        content_disposition_type="inline",
        headers=_CACHE,
    )


class LocalSwaggerPlugin(SwaggerRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        base = escape(f"{request.app.openapi_config.path.rstrip('/')}/{ASSETS}")  # type: ignore[union-attr]
        spec_url = escape(self.get_openapi_json_route(request))
        title = escape(str(openapi_schema["info"]["title"]))
        return (
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{title}</title>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f'<link rel=icon type=image/png href="{base}/favicon-32x32.png">'
            f'<link rel=stylesheet href="{base}/swagger-ui.css">'
            f'<link rel=stylesheet href="{base}/index.css">'
            f'</head><body><div id=swagger-ui data-url="{spec_url}"></div>'
            f'<script src="{base}/swagger-ui-bundle.js"></script>'
            f'<script src="{base}/swagger-ui-standalone-preset.js"></script>'
            f'<script src="{base}/{INIT}"></script>'
            "</body></html>"
        ).encode()

    @staticmethod
    def render_oauth2_redirect() -> bytes:
        return (
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<title>Swagger UI: OAuth2 redirect</title></head><body><script src="{ASSETS}/'
            'oauth2-redirect.js"></script></body></html>'
        ).encode()

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)  # the OAuth2 redirect page
        # A fresh handler per app: a handler object belongs to one router.
        router.register(
            get(f"/{ASSETS}/{{name:str}}", include_in_schema=False, sync_to_thread=False)(
                swagger_asset
            )
        )
