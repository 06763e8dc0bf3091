"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with
every asset from tickwork itself, so they work on a network without internet access.

The JavaScript and CSS come from the ``fastapi-offline`` package, which ships Swagger UI
and ReDoc builds; they are served under ``/docs/assets/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "install"]

ASSETS_URL: Final = "/docs/assets"
_ASSETS = Path(str(files("fastapi_offline") / "static"))
_SWAGGER_PARAMETERS: Final = {
    "deepLinking": True,
    "persistAuthorization": True,
    # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
    "validatorUrl": None,
}


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (none of them in the document)."""
    app.mount(ASSETS_URL, StaticFiles(directory=_ASSETS), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{base}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
