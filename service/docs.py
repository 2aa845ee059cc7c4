"""The interactive documentation (``/schema``, ``/schema/swagger``): Swagger UI, its scripts,
stylesheet and icon served by this server from the files vendored in ``service/static/`` (see
its README), so the page works without reaching any other host."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Router
    from litestar.openapi.plugins import OpenAPIRenderPlugin

__all__ = ("ASSETS_PATH", "SWAGGER_UI_VERSION", "docs_assets", "render_plugins")

SWAGGER_UI_VERSION: Final = "5.36.0"
"""The vendored Swagger UI (npm ``swagger-ui-dist``); its folder says so too."""
# Under /schema: public like the pages that load them, unmetered, and not rate limited.
ASSETS_PATH: Final = "/schema/assets"
_FOLDER: Final = Path(__file__).parent / "static" / "swagger-ui"


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``/schema`` and ``/schema/swagger``, loading only this server's files."""
    return [
        SwaggerRenderPlugin(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            path=["/", "/swagger"],
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        )
    ]


def docs_assets() -> Router:
    """The router serving the vendored files."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[_FOLDER],
        name="docs-assets",
        # A file changes only with the vendored version, which an upgrade of the service brings.
        cache_control=CacheControlHeader(max_age=86_400, public=True),
    )
