"""The compose stack and the image. No Docker engine runs on the project's machines, so
docker-compose.yml, the Dockerfile and requirements.lock are checked by parsing them; the db's
init script, which is plain SQL through psql, runs for real against the test server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from events import APP_ROLE
from events.migrate import migrate
from service.cli import main as diplofeed
from service.settings import Settings
from tests.database import scratch_database
from tests.test_locks import pins

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
INIT_DIR = ROOT / "deploy" / "postgres" / "initdb"
INIT_SCRIPT = INIT_DIR / "10-diplofeed-roles.sh"
APP_SERVICES = ("migrate", "api", "projector")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services() -> dict[str, Any]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    assert isinstance(deps, dict), "depends_on needs the long form, with a condition"
    return {name: spec["condition"] for name, spec in deps.items()}


def _healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# ${VAR}, ${VAR:-default}, ${VAR:?error} and $VAR, but not the escaped $${VAR} and $$VAR.
_INTERPOLATION = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_]\w*)|([A-Za-z_]\w*))")
# A secret-looking key (not itself inside an interpolation) followed by a value that is not
# an interpolation.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?<![{$\w])\w*(?:password|passwd|secret|token)\w*[\"']?\s*[:=]\s*"
    r"(?![\s\"']*\$\{)[\"']?[^\s\"'#]"
)
# user:password@ in a URL; the password must be one interpolation and nothing else.
_URL_CREDENTIALS = re.compile(r"://[^\s/:@]+:([^\s/@]+)@")
_ONE_INTERPOLATION = re.compile(r"\$\{\w+(?::[-?][^}]*)?\}")


def _literal_secrets(text: str) -> list[str]:
    """Passwords, secrets or tokens written as literal values in ``text``."""
    return [m.group(0) for m in _SECRET_ASSIGNMENT.finditer(text)] + [
        m.group(0)
        for m in _URL_CREDENTIALS.finditer(text)
        if not _ONE_INTERPOLATION.fullmatch(m.group(1))
    ]


def _without_comments(text: str) -> str:
    """YAML or shell text without its whole-line comments (compose interpolates no comment)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _documented_variables() -> set[str]:
    return set(re.findall(r"(?m)^([A-Za-z_]\w*)=", ENV_EXAMPLE.read_text()))


class _AskedFor(Mapping[str, str]):
    """An empty environment that remembers which variables were looked up."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.names.add(str(key))
        return False

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _settings_variables() -> set[str]:
    """Every environment variable the service reads (asked of Settings itself)."""
    asked = _AskedFor()
    Settings.from_env(asked)
    assert "DATABASE_URL" in asked.names
    return asked.names


# -- services and start order -------------------------------------------------------------------


def test_the_stack_has_its_four_services() -> None:
    assert set(_services()) >= {"db", "migrate", "api", "projector"}
    assert "version" not in _compose(), "the top-level version key is obsolete"


def test_postgres_service_has_healthcheck_and_named_volume() -> None:
    compose = _compose()
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    check = _healthcheck(db)
    assert "pg_isready" in check
    assert "-U" in check
    assert "-d" in check
    # The image's temporary server, during the init scripts, listens on the socket only: a
    # socket check would report ready before migrate can connect over the network.
    assert re.search(r"-h\s+(127\.0\.0\.1|localhost)", check), "pg_isready must check over TCP"
    data = next(v for v in db["volumes"] if v.endswith(":/var/lib/postgresql/data"))
    assert data.split(":")[0] in compose["volumes"], "the data must live in a named volume"


def test_postgres_image_runs_the_init_script() -> None:
    db = _services()["db"]
    # The init script reads the password with psql's \getenv, new in PostgreSQL 15.
    major = re.match(r"postgres:(\d+)", db["image"])
    assert major is not None
    assert int(major.group(1)) >= 15
    mounts = [v for v in db["volumes"] if ":/docker-entrypoint-initdb.d" in v]
    assert len(mounts) == 1
    source = mounts[0].split(":")[0]
    assert (ROOT / source).resolve() == INIT_DIR
    assert INIT_SCRIPT.is_file()
    assert _environment(db)["API_DB_USER"].startswith("${API_DB_USER")


def test_migrate_runs_once_after_the_database_is_healthy() -> None:
    migrate_ = _services()["migrate"]
    assert migrate_["restart"] == "no"
    assert _depends_on(migrate_) == {"db": "service_healthy"}
    assert migrate_["command"] == ["migrate"]
    url = _environment(migrate_)["MIGRATION_DATABASE_URL"]
    assert url.startswith("postgresql://${POSTGRES_USER"), "migrations run as the owner"
    assert "@db:5432/" in url


def test_api_starts_after_migrate_completed_and_checks_health() -> None:
    api = _services()["api"]
    deps = _depends_on(api)
    assert deps["migrate"] == "service_completed_successfully"
    assert deps["db"] == "service_healthy"
    assert api["command"] == ["serve"]
    env = _environment(api)
    assert env["DIPLOFEED_HOST"] == "0.0.0.0"  # noqa: S104 (inside the container, on purpose)
    assert env["DIPLOFEED_RUN_PROJECTIONS"] == "false", "the projector service runs them"
    check = _healthcheck(api)
    assert f"http://127.0.0.1:{env['DIPLOFEED_PORT']}/health" in check
    assert "curl" not in check, "the slim image has no curl"
    assert {"interval", "timeout", "retries"} <= set(api["healthcheck"])


def test_api_publishes_its_port_on_loopback_by_default() -> None:
    api = _services()["api"]
    env = _environment(api)
    [port] = api["ports"]
    published = re.fullmatch(
        r"\$\{API_BIND_ADDRESS:-127\.0\.0\.1\}:\$\{API_PORT:-\d+\}:(\d+)", port
    )
    assert published, port
    assert published.group(1) == env["DIPLOFEED_PORT"]
    db_ports = _services()["db"].get("ports", [])
    assert all(p.startswith("127.0.0.1:") for p in db_ports), "the db only on loopback"


def test_projector_scales_to_two_replicas_after_migrate() -> None:
    projector = _services()["projector"]
    deps = _depends_on(projector)
    assert deps["migrate"] == "service_completed_successfully"
    assert deps["db"] == "service_healthy"
    assert projector["command"] == ["project"]
    assert projector["deploy"]["replicas"] == 2
    assert "ports" not in projector, "a published port would stop it from scaling"
    assert "container_name" not in projector, "a fixed name would stop it from scaling"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_run_the_image_built_here(service: str) -> None:
    spec = _services()[service]
    assert spec["build"]["context"] == "."
    assert spec["build"]["dockerfile"] == "Dockerfile"
    assert spec["image"] == _services()["api"]["image"], "one image for the three services"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_run_real_diplofeed_commands(service: str) -> None:
    [command] = _services()[service]["command"]
    assert command in diplofeed.commands


# -- roles and secrets --------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "projector"])
def test_application_connects_as_a_member_of_the_app_role(service: str) -> None:
    env = _environment(_services()[service])
    url = env["DATABASE_URL"]
    assert url.startswith("postgresql://${API_DB_USER:-diplofeed_api}:${API_DB_PASSWORD:?")
    assert "@db:5432/" in url
    assert env["DIPLOFEED_DB_ROLE"] == APP_ROLE
    # The owner's password stays with db and migrate: no env_file here, no reference.
    assert "env_file" not in _services()[service]
    assert "POSTGRES_PASSWORD" not in str(env)


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    assert _literal_secrets(text) == []
    # Beyond the text: every secret-named value is an interpolation.
    for name, service in _services().items():
        for key, value in _environment(service).items():
            if re.search(r"(?i)password|secret|token", key):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", value), (name, key)
    assert _services()["db"]["env_file"] == ".env"


def test_the_secret_check_catches_literal_secrets() -> None:
    bad = [
        "POSTGRES_PASSWORD: hunter2",
        "POSTGRES_PASSWORD=hunter2",
        'API_TOKEN: "abc"',
        "client_secret: 's3'",
        "DATABASE_URL: postgresql://app:hunter2@db:5432/x",
        "DATABASE_URL: postgresql://app:${USER}x@db/x",
    ]
    good = [
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}",
        'API_TOKEN: "${API_TOKEN}"',
        "DATABASE_URL: postgresql://${U:-app}:${P:?set P}@db:5432/${DB:-x}",
        "# the owner's POSTGRES_PASSWORD (from .env)",
    ]
    assert [s for s in bad if not _literal_secrets(s)] == []
    assert [s for s in good if _literal_secrets(s)] == []


def test_required_secrets_fail_when_unset() -> None:
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "API_DB_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), f"${{{secret}}} must use :?"


def test_every_interpolated_variable_is_documented() -> None:
    used = {a or b for a, b in _INTERPOLATION.findall(_without_comments(COMPOSE.read_text()))}
    assert {"POSTGRES_PASSWORD", "API_DB_PASSWORD"} <= used
    assert used - _documented_variables() == set()


def test_the_env_example_documents_every_setting() -> None:
    set_by_compose = {
        key for service in _services().values() for key in _environment(service) if "$" not in key
    }
    documented = _documented_variables() | set(
        re.findall(r"(?m)^# ([A-Z_]+)=", ENV_EXAMPLE.read_text())
    )
    assert _settings_variables() - documented - set_by_compose == set()
    example = ENV_EXAMPLE.read_text()
    for secret in ("POSTGRES_PASSWORD", "API_DB_PASSWORD"):
        assert re.search(rf"(?m)^{secret}=change-me", example), "placeholders only"


def test_compose_passes_only_real_settings() -> None:
    # A misspelt DIPLOFEED_ variable would be ignored without a word.
    for name, service in _services().items():
        if name == "db":
            continue
        unknown = {k for k in _environment(service) if k not in _settings_variables()}
        assert unknown == set(), name


def test_the_env_file_stays_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv"} <= set(dockerignore)


def test_the_init_script_takes_secrets_from_the_environment_only() -> None:
    text = INIT_SCRIPT.read_text()
    # psql variables (:'name') are references, not values.
    assert _literal_secrets(re.sub(r":'\w+'", "", text)) == []
    assert not re.search(r"(?i)password\s+'", text), "no password literal in the SQL"
    assert re.search(r"\\getenv api_password API_DB_PASSWORD", text)
    assert "PASSWORD :'api_password'" in text, "psql quotes the value"
    # A password on psql's command line (-v) would show in the process list.
    assert not re.search(r"-v\s+\w*password", text, re.IGNORECASE)
    assert os.access(INIT_SCRIPT, os.X_OK)


# -- the image ----------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines()]
    return [
        (ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
        for ln in lines
        if ln and not ln.startswith("#")
    ]


def test_dockerfile_is_multi_stage_and_runs_unprivileged() -> None:
    instructions = _dockerfile_instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2
    assert any("AS builder" in s for s in stages)
    users = [args for op, args in instructions if op == "USER"]
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    last_user = max(i for i, (op, _) in enumerate(instructions) if op == "USER")
    assert last_user > last_from, "USER belongs to the runtime stage"
    assert ("ENTRYPOINT", '["diplofeed"]') in instructions
    assert ("CMD", '["serve"]') in instructions
    env = " ".join(args for op, args in instructions if op == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "DIPLOFEED_HOST=0.0.0.0"):
        assert setting in env


def test_dockerfile_installs_the_locked_versions_only() -> None:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    runtime = " ".join(args for op, args in instructions[last_from:] if op == "RUN")
    assert re.search(r"pip install --no-index --find-links=\S+ -r \S*requirements\.lock", runtime)
    assert "--no-deps" in runtime, "the project installs without resolving again"
    builder = " ".join(args for op, args in instructions[:last_from] if op == "RUN")
    assert re.search(r"pip wheel .*-r requirements\.lock", builder)


def test_dockerfile_python_matches_the_lock() -> None:
    args = [a for op, a in _dockerfile_instructions() if op == "ARG" and "PYTHON_IMAGE" in a]
    assert args == ["PYTHON_IMAGE=python:3.11-slim-bookworm"]
    assert "Python 3.11" in LOCK.read_text()


def test_the_image_or_compose_checks_health() -> None:
    ops = {op for op, _ in _dockerfile_instructions()}
    assert "HEALTHCHECK" in ops or "healthcheck" in _services()["api"]
    exposed = [a for op, a in _dockerfile_instructions() if op == "EXPOSE"]
    assert exposed == [_environment(_services()["api"])["DIPLOFEED_PORT"]]


def _locked() -> dict[str, str]:
    return pins(LOCK)


def test_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not pinned in requirements.lock"
        assert requirement.specifier.contains(locked[name]), (name, locked[name])
    assert "diplofeed" not in locked


# -- the init script, run for real --------------------------------------------------------------


def _psql_dir() -> str:
    found = shutil.which("psql")
    if found:
        return str(Path(found).parent)
    import pgserver  # noqa: PLC0415 (the fallback, as for the server itself)

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin")


def _libpq_environment(dsn: str) -> dict[str, str]:
    """The PG* variables that point psql at ``dsn``, as the image's socket does in the db
    container."""
    parts = urlsplit(dsn)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    env = {"PGHOST": host, "PGPORT": str(parts.port or 5432)}
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def _run_init_script(dsn: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    parts = urlsplit(dsn)
    env = {
        "PATH": _psql_dir() + os.pathsep + os.environ.get("PATH", ""),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_DB": parts.path.lstrip("/"),
        **_libpq_environment(dsn),
        **extra,
    }
    return subprocess.run(
        ["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def login_role(server_url: str) -> Iterator[str]:
    """A login role name of this test's own; dropped afterwards (roles are cluster-wide)."""
    name = f"diplofeed_api_test_{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-c", f'DROP ROLE IF EXISTS "{name}"'],
        env={
            "PATH": _psql_dir() + os.pathsep + os.environ.get("PATH", ""),
            "PGUSER": unquote(urlsplit(server_url).username or "postgres"),
            "PGDATABASE": urlsplit(server_url).path.lstrip("/") or "postgres",
            **_libpq_environment(server_url),
        },
        capture_output=True,
        check=True,
        timeout=60,
    )


async def test_init_script_creates_the_application_login(server_url: str, login_role: str) -> None:
    password = "it's; DROP ROLE x; --"  # noqa: S105 (a test value: quoting must hold)
    async with scratch_database(server_url, migrated=False) as dsn:
        for _ in range(2):  # idempotent: safe to run again on an existing volume
            done = _run_init_script(dsn, {"API_DB_USER": login_role, "API_DB_PASSWORD": password})
            assert done.returncode == 0, done.stderr
            assert done.stderr == ""
            assert password not in done.stdout
        # Then migrate runs, as in the stack, and the login gets the app role's privileges.
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            role = await conn.fetchrow(
                "SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, "
                "rolpassword FROM pg_authid WHERE rolname = $1",
                login_role,
            )
            assert role is not None
            assert role["rolcanlogin"]
            assert role["rolinherit"]
            assert not (role["rolsuper"] or role["rolcreaterole"] or role["rolcreatedb"])
            assert role["rolpassword"].startswith(("SCRAM-SHA-256$", "md5"))
            assert await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", login_role, APP_ROLE)
            privilege = "SELECT has_table_privilege($1, 'events', $2)"
            assert await conn.fetchval(privilege, login_role, "INSERT")
            assert not await conn.fetchval(privilege, login_role, "UPDATE")
            assert not await conn.fetchval(privilege, login_role, "DELETE")
        finally:
            await conn.close()
        # The login can take the app role, as DIPLOFEED_DB_ROLE makes the application do.
        parts = urlsplit(dsn)
        netloc = f"{login_role}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        app_dsn = parts._replace(netloc=netloc).geturl()
        app = await asyncpg.connect(app_dsn, password=password, server_settings={"role": APP_ROLE})
        try:
            assert await app.fetchval("SELECT current_user") == APP_ROLE
            assert await app.fetchval("SELECT count(*) FROM events") == 0
        finally:
            await app.close()


async def test_init_script_refuses_to_run_without_a_password(
    server_url: str, login_role: str
) -> None:
    async with scratch_database(server_url, migrated=False) as dsn:
        done = _run_init_script(dsn, {"API_DB_USER": login_role})
        assert done.returncode != 0
        assert "API_DB_PASSWORD" in done.stderr
        conn = await asyncpg.connect(dsn)
        try:
            assert not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login_role)
        finally:
            await conn.close()
