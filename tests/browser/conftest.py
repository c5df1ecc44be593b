"""Real headless Chromium (Debian's package) driven by Playwright, against the real app
served on a loopback port.

One Playwright driver and one Chromium per xdist worker, shared by its browser tests: each
test gets fresh browser contexts (their own cookies and storage), closed after it. Starting
both for every test cost ~1.4 CPU-s of the ~6.6 a browser test took (the driver 0.6, the
browser 0.8; a context 0.2), a tenth of the suite's CPU on two cores (issue 24). Playwright's
objects belong to the event loop that started the driver, so the browser tests and every
async fixture they use run in the session's loop (``loop_scope="session"``: the
``asyncio`` marks added below, this package's fixtures, and its own ``aiohttp_server`` and
``node_db_url``); the other tests keep a loop of their own each.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from node import typedefs as T
from tests.browser import install
from tests.conftest import node_database
from tests.factories import create_session, create_user

CHROMIUM = os.environ.get("WB_CHROMIUM", install.CHROMIUM)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _chromium_path() -> str:
    """Debian's Chromium headless shell; installed on first use when missing (install.py)."""
    try:
        return install.ensure_chromium(CHROMIUM)
    except install.Missing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser bundle from the npm registry (package.json), for a11y checks."""
    try:
        return install.ensure_axe().read_text()
    except install.Missing as exc:
        pytest.fail(str(exc))


SESSION = pytest.mark.asyncio(loop_scope="session")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """This package's tests run in the session's event loop (see the module's docs)."""
    for item in items:
        if HERE in Path(str(item.path)).parents and item.get_closest_marker("asyncio"):
            item.add_marker(SESSION, append=False)


class _Chromium:
    """The worker's Playwright driver and Chromium, started at the first browser test and
    started again if Chromium went away."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.browser: Any = None

    async def get(self) -> Any:
        if self.browser is not None and self.browser.is_connected():
            return self.browser
        path = _chromium_path()
        if self.playwright is None:
            try:
                from playwright.async_api import async_playwright
            except ImportError:
                pytest.fail("the browser tests need Playwright's Python package: "
                            "pip install playwright (no `playwright install` needed)")
            self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(executable_path=path,
                                                             args=CHROMIUM_ARGS)
        return self.browser

    async def stop(self) -> None:
        if self.browser is not None and self.browser.is_connected():
            await self.browser.close()
        if self.playwright is not None:
            await self.playwright.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _chromium() -> AsyncIterator[_Chromium]:
    chromium = _Chromium()
    try:
        yield chromium
    finally:
        await chromium.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(_chromium: _Chromium) -> AsyncIterator[Any]:
    """The worker's Chromium; every context a test opens is closed after it."""
    b = await _chromium.get()
    before = set(b.contexts)
    try:
        yield b
    finally:
        for ctx in b.contexts:
            if ctx not in before:
                await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def aiohttp_server() -> AsyncIterator[Any]:
    """pytest-aiohttp's ``aiohttp_server``, in the session's loop. A copy: declaring
    pytest-aiohttp's own function again with ``loop_scope="session"`` marks that very
    function, and every test outside this package then got its servers in the session
    loop too (29 errors in .ci/run on a7846db)."""
    servers: list[TestServer] = []

    async def go(app: Any, *, host: str = "127.0.0.1", port: int | None = None,
                 **kwargs: Any) -> TestServer:
        server = TestServer(app, host=host, port=port)
        await server.start_server(**kwargs)
        servers.append(server)
        return server

    yield go
    while servers:
        await servers.pop().close()


@pytest_asyncio.fixture(loop_scope="session")
async def node_db_url(pg: Any) -> AsyncIterator[str]:
    """tests/conftest.py's ``node_db_url``, in the session's loop (its own function
    declared again would put every test's in the session loop: see ``aiohttp_server``)."""
    async with node_database(pg) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def live_app(aiohttp_server, node_config):
    from node.app import create_app

    server = await aiohttp_server(create_app(node_config), host="127.0.0.1")
    return server


@pytest.fixture
def signed_in_context(browser, live_app):
    """make(username, js=True) -> (context, base_url, user_id) with a session cookie (the
    ``browser`` fixture closes the context after the test)."""

    async def make(username: str, *, js: bool = True, admin: bool = False):
        pool = live_app.app[T.pool_key]
        user_id = await create_user(pool, username, admin=admin)
        cookie = await create_session(pool, user_id)
        base = str(live_app.make_url("/")).rstrip("/")
        ctx = await browser.new_context(java_script_enabled=js)
        await ctx.add_cookies([{"name": "wb_session_id", "value": cookie, "url": base + "/"}])
        return ctx, base, user_id

    yield make
