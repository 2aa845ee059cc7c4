"""Settings, read from the environment in this one place and nowhere else."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec

from events.connect import ConnectionOptions

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("ENV_PREFIX", "Settings", "SettingsError")

ENV_PREFIX: Final = "DIPLOFEED_"
_LIST_FIELDS: Final = frozenset({"cors_origins"})


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service can be configured with. Environment: ``DATABASE_URL`` and
    ``MIGRATION_DATABASE_URL`` as named, every other field as ``DIPLOFEED_<FIELD>``."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/diplofeed"
    """Where the application connects (ideally as a member of ``diplofeed_app``)."""
    migration_database_url: str | None = None
    """Where ``diplofeed migrate`` connects, as the schema owner; defaults to database_url."""
    db_role: str | None = None
    """``SET ROLE`` to this role on every application connection (e.g. ``diplofeed_app``)."""
    statement_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 30_000
    """Longest a statement of the application may run."""
    idle_in_transaction_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    """Longest a transaction may sit idle before the server ends it."""
    pool_min_size: Annotated[int, msgspec.Meta(ge=0)] = 2
    pool_max_size: Annotated[int, msgspec.Meta(ge=1)] = 10
    db_wait_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    """How long ``serve`` and ``project`` wait at start-up for a database that does not answer
    yet (a server still starting), retrying with backoff; 0: try once."""

    # -- HTTP -------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Where ``diplofeed serve`` listens."""
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    public_url: str | None = None
    """The API's public base URL, for CloudEvents ``source`` and absolute links
    (default: taken from each request)."""
    public_reads: bool = False
    """Let reads through without an API key (writes and admin always need one)."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS (comma-separated in the environment); empty: CORS off."""
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    """Largest request body accepted (413 above it)."""
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    """Longest a client may take to send a request's body, from the request's start: past it,
    408 and the connection is closed (a client sending a byte at a time holds no socket)."""
    keep_alive_s: Annotated[int, msgspec.Meta(ge=1, le=300)] = 5
    """How long ``diplofeed serve`` keeps an idle connection open between requests."""
    rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 6_000
    """Requests per minute per API key (per address without one); 0 disables the limit."""
    auth_failures_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 60
    """Failed authentications per minute per client address; past it, the address's requests
    with a key this process has not verified lately get 429, without a lookup, until the minute
    ends. 0 disables the limit."""
    key_cache_s: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    """How long a process trusts what it read of an API key (or of its absence): a revocation
    through another process takes effect within it."""
    long_poll_max_s: Annotated[float, msgspec.Meta(ge=0, le=300)] = 30.0
    """The longest ``Prefer: wait=N`` a feed read honours."""
    sse_heartbeat_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0
    """How often the live stream sends a comment to keep idle connections open."""
    read_your_writes_max_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 5.0
    """The longest a view waits for the cursor it must reflect before answering stale."""
    view_statement_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 5_000
    """Longest a statement of a view request (a page, an as-of read) may run: past it the
    request is a 503 naming this limit, not a busy server."""
    view_work_mem_kb: Annotated[int, msgspec.Meta(ge=64)] = 8_192
    """Working memory a view request's sorts and hashes may take before spilling to disk."""
    view_page_max_bytes: Annotated[int, msgspec.Meta(ge=4_096)] = 1_048_576
    """A view page ends early once its body reaches this size (``Link: rel=next`` continues)."""
    ready_max_lag_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """``/ready`` fails while a projection is further behind than this."""
    run_projections: bool = True
    """Run the projection runners in the API process (off when a separate projector runs)."""
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: str = ".diplofeed"
    """Where ``diplofeed serve --demo`` keeps its embedded PostgreSQL's data."""
    database_url_given: bool = False
    """Whether ``DATABASE_URL`` was set (not an environment variable of its own): without it,
    the demo runs an embedded server."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            if name == "database_url_given":
                continue
            key = name.upper() if name.endswith("database_url") else ENV_PREFIX + name.upper()
            if key in env and env[key] != "":
                value = env[key]
                raw[name] = (
                    tuple(v.strip() for v in value.split(",") if v.strip())
                    if name in _LIST_FIELDS
                    else value
                )
        raw["database_url_given"] = "database_url" in raw
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid setting: {exc}") from exc
        if settings.pool_min_size > settings.pool_max_size:
            raise SettingsError(
                f"invalid setting: pool_min_size ({settings.pool_min_size}) exceeds "
                f"pool_max_size ({settings.pool_max_size})"
            )
        return settings

    def connection_options(self) -> ConnectionOptions:
        """How the application's pool connects."""
        return ConnectionOptions(
            dsn=self.database_url,
            role=self.db_role,
            statement_timeout_ms=self.statement_timeout_ms,
            idle_in_transaction_timeout_ms=self.idle_in_transaction_timeout_ms,
            min_pool_size=self.pool_min_size,
            max_pool_size=self.pool_max_size,
        )

    def migration_dsn(self) -> str:
        """Where migrations run."""
        return self.migration_database_url or self.database_url
