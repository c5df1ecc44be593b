"""Phone first, checked by crawling: as an anonymous visitor, a member and an admin, every
page reachable by links (GET, same origin) is opened 390 px wide; none may scroll sideways,
none may be refused a style or script by the app's own CSP, and axe-core (from the npm
registry) must find no serious or critical accessibility violation."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.seed import browser_session, seed

WIDTH = 390
MAX_PAGES = 60
SKIP_PREFIXES = ("/static/", "/avatars/", "/api/", "/metrics", "/health", "/openapi",
                 "/.well-known/", "/favicon", "/mcp")
SKIP_SUFFIXES = ("/photo", ".svg", ".json", ".txt", ".cbor")
AXE_IMPACTS = ("serious", "critical")

LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    const spills = el.scrollWidth > el.clientWidth + 1
                   && getComputedStyle(el).overflowX === 'visible';
    if ((r.right > width + 1 || spills) && getComputedStyle(el).position !== 'fixed') {
      let p = el.parentElement, clipped = false;
      while (p) { const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; }
        p = p.parentElement; }
      if (!clipped) wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                              + (el.className && typeof el.className === 'string'
                                 ? '.' + el.className.split(' ').join('.') : '')
                              + ' ' + Math.round(r.right) + 'px');
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}"""
AXE_JS = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def _crawlable(base: str, href: str) -> str | None:
    parts = urlsplit(href)
    if f"{parts.scheme}://{parts.netloc}" != base or not parts.path:
        return None
    if parts.path.startswith(SKIP_PREFIXES) or parts.path.endswith(SKIP_SUFFIXES):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _crawl(browser, base: str, axe_source: str, start: list[str],
                 cookie: str | None) -> dict[str, list[str]]:
    ctx = await browser.new_context(viewport={"width": WIDTH, "height": 844},
                                    device_scale_factor=1, is_mobile=True, has_touch=True)
    await ctx.add_init_script(script=axe_source)  # injected by the browser, not the page
    if cookie:
        await ctx.add_cookies([{"name": "wb_session_id", "value": cookie, "url": base + "/"}])
    problems: dict[str, list[str]] = {}
    seen_paths: set[str] = set()
    queue = list(start)
    try:
        page = await ctx.new_page()
        csp: list[str] = []
        page.on("console", lambda m: csp.append(m.text)
                if "Content Security Policy" in m.text else None)
        while queue and len(seen_paths) < MAX_PAGES:
            target = queue.pop(0)
            path = urlsplit(target).path
            if path in seen_paths:
                continue
            seen_paths.add(path)
            csp.clear()
            response = await page.goto(base + target)
            found: list[str] = []
            if response is None or response.status >= 500 or (
                    response.status >= 400 and target not in start):
                found.append(f"status {response.status if response else 'none'}")
            kind = (response.headers.get("content-type", "") if response else "")
            if not kind.startswith("text/html"):  # a feed or a file, not a page to lay out
                if found:
                    problems[target] = found
                continue
            size = await page.evaluate(OVERFLOW_JS)
            if size["scroll"] > WIDTH:
                found.append(f"{size['scroll']} px wide: {size['wide']}")
            for v in await page.evaluate(AXE_JS):
                if v["impact"] in AXE_IMPACTS:
                    found.append(f"axe {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
            found.extend(f"CSP: {m[:160]}" for m in csp)
            if found:
                problems[target] = found
            for href in await page.evaluate(LINKS_JS):
                link = _crawlable(base, urljoin(page.url, href))
                if link and urlsplit(link).path not in seen_paths:
                    queue.append(link)
    finally:
        await ctx.close()
    assert len(seen_paths) >= len(start), seen_paths
    return problems


@pytest.mark.parametrize("role", ["anonymous", "waiting", "member", "admin"])
async def test_every_page_fits_a_phone_and_passes_axe(browser, live_app, axe_source, tmp_path,
                                                      role):
    community = await seed(live_app.app, tmp_path / "exchange")
    base = str(live_app.make_url("/")).rstrip("/")
    start = {"anonymous": ["/", "/login", "/register", f"/register/{community.invite_token}"],
             "waiting": ["/login/pending", "/"],
             "member": ["/", f"/requests/{community.request_ids[0]}", "/members", "/profile",
                        "/requests/no-such-request", "/people/nobody-here",
                        "/invite/new", "/auth/devices", "/settings/account", "/sync/scope"],
             "admin": ["/admin", "/admin/sessions", "/admin/requests", "/admin/sync-control",
                       "/admin/profiles", "/admin/audit", "/sync/public", "/sync/scope",
                       "/admin/copilot", "/admin/dedalus", "/invite/map",
                       "/review/sign-ins", "/recurring"]}[role]
    user = {"anonymous": None, "waiting": community.newcomer_id, "member": community.member_id,
            "admin": community.admin_id}[role]
    status = "pending" if role == "waiting" else "active"
    cookie = await browser_session(live_app.app, user, status) if user else None
    problems = await _crawl(browser, base, axe_source, start, cookie)
    assert problems == {}, "\n".join(f"{p}: {v}" for p, v in problems.items())
