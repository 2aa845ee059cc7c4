"""Schemathesis against the app's own OpenAPI document, with a bounded number of cases: no
5xx, no status, content type or body that the document does not describe.

The fuzzer runs as its own process (its CLI), against the real server on this test's loop.
The live stream is left out: it never ends by design, and its own tests cover it.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from tests.api_server import running_api
from tests.database import scratch_database

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


async def test_the_api_holds_up_against_schemathesis(server_url: str, tmp_path: Path) -> None:
    fuzzer = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert fuzzer is not None, "schemathesis is a test dependency"
    async with (
        scratch_database(server_url, migrated=True) as dsn,
        running_api(dsn, long_poll_max_s=0.2, read_your_writes_max_s=0.2) as api,
    ):
        process = await asyncio.create_subprocess_exec(
            fuzzer, "run", f"{api.url}/schema/openapi.json",
            "--checks", CHECKS,
            "--header", f"Authorization: Bearer {api.tokens['admin']}",
            "--exclude-operation-id", "streamFeed",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "25",
            "--seed", "20261202",
            # One worker: Hypothesis parses lambdas' source to describe its strategies, and
            # CPython 3.11 may fail two threads parsing at once ("AST constructor recursion
            # depth mismatch", gh-106905).
            "--workers", "1",
            "--request-timeout", "20",
            "--generation-database", "none",
            "--generation-with-security-parameters", "false",
            "--no-color",
            "--report-dir", str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )  # fmt: skip
        output, _ = await process.communicate()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "passed" in report
