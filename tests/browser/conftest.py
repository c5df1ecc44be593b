"""Real headless Chromium (Debian's package) driven by Playwright, against the real app
served on a loopback port."""

from __future__ import annotations

import os

import pytest

from node import typedefs as T
from tests.browser import install
from tests.factories import create_session, create_user

CHROMIUM = os.environ.get("WB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _chromium_path() -> str:
    """Debian's Chromium; installed on first use when missing (see install.py)."""
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


@pytest.fixture
async def browser():
    path = _chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright's Python package: "
                    "pip install playwright (no `playwright install` needed)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def live_app(aiohttp_server, node_config):
    from node.app import create_app

    server = await aiohttp_server(create_app(node_config), host="127.0.0.1")
    return server


@pytest.fixture
def signed_in_context(browser, live_app):
    """make(username, js=True) -> (context, base_url, user_id) with a session cookie."""
    contexts = []

    async def make(username: str, *, js: bool = True, admin: bool = False):
        pool = live_app.app[T.pool_key]
        user_id = await create_user(pool, username, admin=admin)
        cookie = await create_session(pool, user_id)
        base = str(live_app.make_url("/")).rstrip("/")
        ctx = await browser.new_context(java_script_enabled=js)
        await ctx.add_cookies([{"name": "wb_session_id", "value": cookie, "url": base + "/"}])
        contexts.append(ctx)
        return ctx, base, user_id

    yield make
