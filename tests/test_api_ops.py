"""Operations over HTTP: health, readiness with its reasons, Prometheus metrics, request ids,
and an OpenAPI document in which every route is named, summarised and has its errors."""

from __future__ import annotations

import gc
import json
import logging
import re
from typing import TYPE_CHECKING, Any

import asyncpg

from projections.collector import GC_THRESHOLDS
from tests.api_server import running_api
from tests.database import scratch_database
from tests.test_api_writes import schedule

if TYPE_CHECKING:
    import pytest

    from tests.api_server import ApiServer


async def test_health_and_readiness(api: ApiServer) -> None:
    async with api.client(None) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert health.json() == {"status": "ok"}
    body = ready.json()
    assert ready.status_code == 200, body
    assert body["ready"] and body["database"] and body["migrations_current"]
    assert {p["name"] for p in body["projections"]} == {"roster", "contacts", "audit"}


async def test_not_ready_while_a_migration_is_pending(server_url: str) -> None:
    async with scratch_database(server_url, migrated=True) as dsn:
        owner = await asyncpg.connect(dsn)
        try:
            await owner.execute(
                "DELETE FROM schema_migrations WHERE version = "
                "(SELECT max(version) FROM schema_migrations)"
            )
        finally:
            await owner.close()
        async with running_api(dsn, run_projections=False) as api, api.client(None) as client:
            ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["migrations_current"] is False
    assert any("migrate" in p for p in ready.json()["problems"])


async def test_metrics(api: ApiServer) -> None:
    async with api.client("write") as writer:
        meeting_id, _ = await schedule(writer)
        assert (await writer.get(f"/streams/meeting-{meeting_id}")).status_code == 200
        assert (await writer.get("/streams/meeting-nosuchmeeting")).status_code == 404
    async with api.client(None) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    parameters = [p.split("=")[0].strip() for p in response.headers["content-type"].split(";")]
    assert parameters.count("charset") == 1, response.headers["content-type"]
    text = response.text
    for name in (
        "diplofeed_command_seconds_bucket",
        "diplofeed_commands_total",
        "diplofeed_feed_horizon_lag_seconds",
        "diplofeed_projection_lag_events",
        "diplofeed_projection_lag_seconds",
        "diplofeed_sse_subscribers",
        "diplofeed_http_requests_total",
    ):
        assert name in text, name
    assert 'diplofeed_commands_total{command="ScheduleMeeting",outcome="ok"}' in text
    # Requests by route template and status, counted and timed; never by raw path.
    counted = re.findall(r"^diplofeed_http_requests_total\{(.*)\} ([0-9.e+]+)$", text, re.M)
    series = {labels: float(n) for labels, n in counted}
    template = 'path="/streams/{stream_id}"'
    assert any(template in k and 'status_code="200"' in k and 'method="GET"' in k for k in series)
    assert any(template in k and 'status_code="404"' in k for k in series)
    assert any('path="/meetings"' in k and 'status_code="201"' in k for k in series)
    assert meeting_id not in text
    assert re.search(r"^diplofeed_http_request_duration_seconds_count\{.*/streams/\{", text, re.M)
    assert "/metrics" not in "".join(series)


async def test_request_ids_are_echoed_or_made(api: ApiServer) -> None:
    async with api.client(None) as client:
        given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(made.headers["X-Request-ID"]) == 32


async def test_every_route_is_documented(api: ApiServer) -> None:
    async with api.client(None) as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
        page = await client.get("/schema/swagger")
        problem_doc = await client.get("/problems/precondition-failed")
    assert schema["openapi"].startswith("3.1")
    assert page.status_code == 200
    assert "If-Match" in problem_doc.text
    ids = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), where
            assert operation.get("summary"), where
            ids.append(operation["operationId"])
            errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
            assert errors, where
            for status in errors:
                content = operation["responses"][status].get("content", {})
                assert "application/problem+json" in content, (where, status)
            if method == "post" and path not in {"/keys"}:
                assert {"201", "409", "412", "415", "422"} - set(operation["responses"]) <= {
                    "412"
                }, where
    assert len(ids) == len(set(ids))
    assert {"recordInteraction", "readFeed", "streamFeed", "getMeeting", "getContactHistory",
            "getContactGraph", "searchActors", "getAuditTrail"} <= set(ids)  # fmt: skip


async def test_the_document_says_which_routes_need_a_key(api: ApiServer) -> None:
    # Documented public (an empty security requirement) exactly when served without a key.
    async with api.client(None) as client:
        schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
        assert schema["security"] == [{"apiKey": []}]
        public = set()
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                if operation.get("security") == []:
                    public.add(operation["operationId"])
                else:
                    assert "security" not in operation, operation["operationId"]
                concrete = re.sub(r"\{[^}]+\}", "x", path)
                answer = await client.request(method.upper(), concrete)
                where = f"{method.upper()} {path}: {answer.status_code}"
                assert (answer.status_code == 401) != (operation.get("security") == []), where
    assert public == {"health", "ready", "metrics", "describeProblem"}


async def test_logs_are_json_lines_carrying_the_request_id(
    server_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, run_projections=False, log_level="info") as api,
        api.client(None) as client,
    ):
        logging.getLogger().setLevel(logging.INFO)
        await client.get("/health", headers={"X-Request-ID": "trace-me-42"})
        await client.get("/feed")  # 401: logged too
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("logger") == "diplofeed.access"]
    health = next(line for line in access if line["path"] == "/health")
    assert health["request_id"] == "trace-me-42"
    assert health["status"] == 200
    assert health["level"] == "info"
    assert "timestamp" in health
    assert any(line["path"] == "/feed" and line["status"] == 401 for line in access)


async def test_the_collector_is_tuned_while_serving(server_url: str) -> None:
    before = gc.get_threshold()
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, run_projections=False),
    ):
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before


async def test_not_ready_while_the_app_cannot_read_a_projections_tables(server_url: str) -> None:
    async with scratch_database(server_url, migrated=True) as dsn:
        owner = await asyncpg.connect(dsn)
        try:
            # The audit projection's tables, made by the owner and kept from the application.
            await owner.execute("CREATE TABLE projections.audit_v1 (position bigint)")
            await owner.execute("REVOKE ALL ON projections.audit_v1 FROM diplofeed_app")
        finally:
            await owner.close()
        async with running_api(dsn, run_projections=False) as api, api.client(None) as client:
            ready = await client.get("/ready")
    body = ready.json()
    assert ready.status_code == 503, body
    (audit,) = [p for p in body["projections"] if p["name"] == "audit"]
    assert audit["ok"] is False
    assert "cannot read audit_v1" in audit["problem"]
    assert audit["problem"] in body["problems"]
    assert all(p["ok"] for p in body["projections"] if p["name"] != "audit")
