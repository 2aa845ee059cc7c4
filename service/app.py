"""The composition root: ``create_app(settings)`` wires every part of the HTTP service.

Nothing imports from this module; tests, ``diplofeed serve`` and ``litestar --app
service.app:create_app`` call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.plugins.prometheus import PrometheusConfig

from service.auth import ApiKeyMiddleware, principal_of
from service.bodies import JsonRequest
from service.body_timeout import BodyTimeoutMiddleware, close_unread
from service.conformance import ConformanceMiddleware
from service.correctable import CorrectableChanges
from service.docs import docs_assets, render_plugins
from service.logs import RequestIdMiddleware, configure_logging
from service.problems import problem_details_config
from service.request_metrics import RequestMetricsMiddleware
from service.routes.commands import command_handlers
from service.routes.feed import feed_page, feed_stream, read_stream
from service.routes.ops import OPS_HANDLERS
from service.routes.options import options_handlers
from service.routes.views import VIEW_HANDLERS
from service.runtime import lifespan
from service.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

__all__ = ("create_app",)

# Anchored: a pattern matches anywhere in the path.
_UNMETERED = ["^/health$", "^/ready$", "^/metrics$", "^/schema(/|$)"]

# Headers a browser client may read on cross-origin responses.
_EXPOSED = [
    "Location", "ETag", "Link", "Diplofeed-Cursor", "Diplofeed-Position", "Diplofeed-Stale",
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
    "Retry-After", "X-Request-ID", "Preference-Applied", "Idempotent-Replayed",
]  # fmt: skip

_TAGS = [
    Tag(name="actors", description="Actors, their aliases and roles; contact histories."),
    Tag(name="interactions", description="Calls, meetings, visits, statements, apologies."),
    Tag(name="meetings", description="Meeting lifecycles and delegation rosters."),
    Tag(name="declarations", description="Declarations drafted, signed or refused."),
    Tag(name="amendments", description="Sources added, corrections and retractions."),
    Tag(name="feed", description="The event log as a feed: pages, long poll, live stream."),
    Tag(name="audit", description="What was recorded about an item, when and by whom."),
    Tag(name="operations", description="Health, readiness, metrics."),
    Tag(name="admin", description="API keys."),
]


def _rate_limit_key(request: Request[Any, Any, Any]) -> str:
    return principal_of(request)


def create_app(settings: Settings | None = None) -> Litestar:
    """The Diplofeed API for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    routes = [
        *command_handlers(),
        feed_page,
        feed_stream,
        read_stream,
        *VIEW_HANDLERS,
        *OPS_HANDLERS,
    ]
    handlers: list[ControllerRouterHandler] = [*options_handlers(routes), *routes]
    middleware: list[Any] = [
        # First: the body's time runs from the request's start.
        BodyTimeoutMiddleware(settings.body_timeout_s),
        RequestIdMiddleware,
        PrometheusConfig(
            app_name="diplofeed",
            prefix="diplofeed_http",
            exclude=_UNMETERED,
            # By route template: raw paths would make a series per actor, meeting and stream.
            group_path=True,
            middleware_class=RequestMetricsMiddleware,
        ).middleware,
        ApiKeyMiddleware(),
    ]
    if settings.rate_limit_per_minute > 0:
        middleware.append(
            RateLimitConfig(
                rate_limit=("minute", settings.rate_limit_per_minute),
                exclude=_UNMETERED,
                identifier_for_request=_rate_limit_key,
            ).middleware
        )
    middleware.append(ConformanceMiddleware())
    return Litestar(
        route_handlers=[Router("/", route_handlers=handlers), docs_assets()],
        lifespan=[lifespan],
        # configure_logging above owns logging: Litestar's default config would replace the
        # root logger's level (INFO, whatever log_level says) and handler (its own text format).
        logging_config=None,
        state=State({"settings": settings}),
        middleware=middleware,
        before_send=[close_unread],
        plugins=[ProblemDetailsPlugin(problem_details_config()), CorrectableChanges()],
        cors_config=(
            CORSConfig(allow_origins=list(settings.cors_origins), expose_headers=_EXPOSED)
            if settings.cors_origins
            else None
        ),
        request_max_body_size=settings.max_body_bytes,
        request_class=JsonRequest,
        openapi_config=OpenAPIConfig(
            title="Diplofeed",
            version="0.1.0",
            description="An event-sourced feed of diplomatic interactions: record what sources "
            "report, follow the feed, query delegation rosters, contact histories and the "
            "contact graph, as of any moment.",
            path="/schema",
            render_plugins=render_plugins(),
            tags=_TAGS,
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API key from `diplofeed keys create`.",
                    )
                }
            ),
            security=[{"apiKey": []}],
        ),
    )
