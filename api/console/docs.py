"""The API's interactive documentation (/docs, /redoc) with every script and style served from
the installed packages: FastAPI's own pages load them from a CDN, and are blank offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/docs/static"

DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""Both pages start their viewer with an inline script; nothing may come from elsewhere (ReDoc
links a logo from its makers' CDN: the policy keeps the browser from asking for it)."""


def docs_assets() -> Path:
    """Swagger UI's and ReDoc's bundles as the fastapi-offline package ships them."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc, for an app made with `docs_url=None, redoc_url=None`."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets()), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def offline(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return offline(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} — Swagger UI",
                swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                oauth2_redirect_url=oauth2_redirect,
                # the validator badge asks a public server about the document
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return offline(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} — ReDoc",
                redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )
