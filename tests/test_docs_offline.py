"""The interactive documentation works offline: every script, stylesheet and icon its pages
load comes from the server itself (the vendored Swagger UI, pinned), and answers with the right
type. Optionally, a real headless Chromium with every other host unreachable renders it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import pytest

from service.docs import SWAGGER_UI_VERSION

if TYPE_CHECKING:
    from tests.api_server import ApiServer

PAGES = ("/schema", "/schema/swagger")
STATIC = Path(__file__).resolve().parent.parent / "service" / "static" / "swagger-ui"
TYPES = {"script": "javascript", "stylesheet": "text/css", "icon": "image/png"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class _Assets(HTMLParser):
    """What a page makes the browser load: ``<script src>`` and ``<link href>``, by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.found.append(("script", values["src"] or ""))
        elif tag == "link" and values.get("href"):
            self.found.append((values.get("rel") or "link", values["href"] or ""))
        elif tag in {"img", "iframe"} and values.get("src"):
            self.found.append((tag, values["src"] or ""))


def _assets(html: str) -> list[tuple[str, str]]:
    parser = _Assets()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("page", PAGES)
async def test_the_documentation_loads_only_this_servers_files(api: ApiServer, page: str) -> None:
    origin = urlsplit(api.url)
    async with api.client(None) as client:
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        found = _assets(response.text)
        assert {kind for kind, _ in found} == set(TYPES), found
        for kind, ref in found:
            url = urljoin(str(response.url), ref)
            assert urlsplit(url)[:2] == origin[:2], (kind, ref)
            asset = await client.get(url)
            assert asset.status_code == 200, (kind, ref)
            assert TYPES[kind] in asset.headers["content-type"], (kind, ref, asset.headers)
            assert len(asset.content) > 100, (kind, ref)


async def test_the_vendored_swagger_ui_is_the_pinned_one(api: ApiServer) -> None:
    bundle = (STATIC / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in bundle
    assert SWAGGER_UI_VERSION in (STATIC.parent / "README.md").read_text(encoding="utf-8")
    assert "Apache License" in (STATIC / "LICENSE").read_text(encoding="utf-8")
    async with api.client(None) as client:
        served = await client.get("/schema/assets/swagger-ui-bundle.js")
        missing = await client.get("/schema/assets/no-such-file.js")
    assert served.content == (STATIC / "swagger-ui-bundle.js").read_bytes()
    assert missing.status_code == 404


async def test_no_page_of_the_documentation_names_another_host(api: ApiServer) -> None:
    async with api.client(None) as client:
        for page in PAGES:
            html = (await client.get(page)).text
            # The inline spec may hold example URLs; the markup around it may not.
            markup = re.sub(r"spec: \{.*\},\s*dom_id", "dom_id", html, flags=re.DOTALL)
            assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", markup), page


def _chromium() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


async def test_swagger_renders_in_a_browser_that_reaches_no_other_host(
    api: ApiServer, tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        # CI installs Debian's chromium (.ci/run): there, a missing browser is a failure.
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run does: apt-get install chromium)")
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    netlog = tmp_path / "netlog.json"
    process = await asyncio.create_subprocess_exec(
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--no-default-browser-check",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Offline but for this server: any other host does not resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=20000", "--dump-dom", f"{api.url}/schema/swagger",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 0, err.decode()[-2000:]
    dom = out.decode()
    # Swagger UI ran: it drew the API's title and its operations.
    assert 'class="swagger-ui"' in dom, dom[-2000:]
    assert "opblock-summary" in dom and "Diplofeed" in dom
    requested = _page_requests(netlog)
    assert f"{api.url}/schema/assets/swagger-ui-bundle.js" in requested, requested
    assert {u for u in requested if urlsplit(u).hostname != "127.0.0.1"} == set()


def _page_requests(netlog: Path) -> set[str]:
    """The URLs that the page (not the browser's own background services) asked for: those
    made on behalf of the top frame's site, 127.0.0.1."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    return {p["url"] for p in starts if "127.0.0.1" in str(p.get("network_isolation_key"))}
