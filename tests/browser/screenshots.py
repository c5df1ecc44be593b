"""Refresh the screenshots in docs/screenshots/: the admin console, the approval page and
the feed, on a desktop and on a phone (390 px), from the seed community on a real node.

    python3 -m tests.browser.screenshots            # or: make screenshots

Uses the embedded PostgreSQL (or WB_TEST_DATABASE_URL) and Debian's Chromium, like the
browser tests; writes only PNG files.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# (file stem, who, path)
SHOTS = (("admin-console", "admin", "/admin"), ("approvals", "admin", "/admin/sessions"),
         ("feed", "member", "/"))


async def take(out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    from node import typedefs as T
    from node.app import MIGRATIONS, create_app
    from tests.browser import install
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.browser.seed import browser_session, seed
    from tests.conftest import make_node_config
    from tests.pg import TestServer

    chromium = install.ensure_chromium(CHROMIUM)
    server = TestServer()
    written: list[Path] = []
    try:
        url = await server.new_database(await server.template("node", MIGRATIONS))
        with tempfile.TemporaryDirectory() as tmp:
            config = make_node_config(url, Path(tmp) / "node", SITE_NAME="Riverside Aid")
            app = create_app(config)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            try:
                community = await seed(app, Path(tmp) / "exchange")
                users = {"admin": community.admin_id, "member": community.member_id}
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=chromium,
                                                       args=CHROMIUM_ARGS)
                    for size, viewport in SIZES.items():
                        for stem, who, path in SHOTS:
                            ctx = await browser.new_context(viewport=viewport,
                                                            is_mobile=size == "phone")
                            cookie = await browser_session(app, users[who])
                            await ctx.add_cookies([{"name": "wb_session_id", "value": cookie,
                                                    "url": base + "/"}])
                            page = await ctx.new_page()
                            await page.goto(base + path)
                            target = out / f"{stem}-{size}.png"
                            await page.screenshot(path=str(target), full_page=True)
                            written.append(target)
                            await ctx.close()
                    await browser.close()
                await app[T.pool_key].close()
            finally:
                await runner.cleanup()
        await server.drop(url)
    finally:
        server.close()
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(out)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
