"""Settings, read from the environment in this one place and nowhere else."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Final

import msgspec

from events.connect import ConnectionOptions

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("ENV_PREFIX", "Settings", "SettingsError")

ENV_PREFIX: Final = "DIPLOFEED_"


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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for name in cls.__struct_fields__:
            key = name.upper() if name.endswith("database_url") else ENV_PREFIX + name.upper()
            if key in env and env[key] != "":
                raw[name] = env[key]
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
