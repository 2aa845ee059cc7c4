"""docker-compose.yml cannot run here (no Docker engine), so it is checked by parsing it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_postgres_service_has_healthcheck_and_named_volume() -> None:
    compose = _compose()
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    check = " ".join(db["healthcheck"]["test"])
    assert "pg_isready" in check
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the data must live in a named volume"
    assert "version" not in compose, "the top-level version key is obsolete"


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*\S", text)
    db = _compose()["services"]["db"]
    assert db["env_file"] == ".env"
    example = (ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example
