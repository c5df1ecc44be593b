"""Every shipped skin, rendered by real Chromium on the main pages (light and, where the
skin follows the device, dark): the colours the browser actually computes for text, muted
text, links, buttons and the header reach WCAG AA on the background they are drawn on."""

from __future__ import annotations

import pytest
from coloraide import Color

from node.skins import catalog

PAGES = ("/", "/sync/scope", "/members", "/settings/account", "/admin", "/sync/review")

# For each probe: its text colour and the first opaque background behind it.
PROBE = """() => {
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'transparent' && !c.startsWith('rgba(0, 0, 0, 0)')) return c;
    }
    return getComputedStyle(document.documentElement).backgroundColor || 'rgb(255, 255, 255)';
  };
  const out = [];
  for (const sel of ['body', 'main p', '.muted', 'main a', 'header.top a', 'button',
                     'button.secondary', 'h1', 'th', 'label']) {
    const el = document.querySelector(sel);
    if (!el || !el.offsetParent && sel !== 'body') continue;
    out.push({sel, fg: getComputedStyle(el).color, bg: bgOf(el)});
  }
  return {skin: document.getElementById('skin-css')?.dataset.skin, probes: out};
}"""


@pytest.mark.parametrize("skin", sorted(catalog.catalog()))
async def test_main_pages_in_every_skin_reach_wcag_aa(signed_in_context, skin):
    assert catalog.check(catalog.catalog()[skin]).ok
    ctx, base, _ = await signed_in_context("root", admin=True, js=False)
    page = await ctx.new_page()
    schemes = ["light", "dark"] if skin in ("default", "high-contrast") else ["light"]
    seen = 0
    for scheme in schemes:
        await page.emulate_media(color_scheme=scheme)
        for path in PAGES:
            r = await page.goto(f"{base}{path}?skin={skin}")
            assert r is not None and r.status == 200, path
            result = await page.evaluate(PROBE)
            assert result["skin"] == skin, path
            for p in result["probes"]:
                ratio = Color(p["fg"]).contrast(Color(p["bg"]), method="wcag21")
                assert ratio >= 4.5, (skin, scheme, path, p, round(ratio, 2))
                seen += 1
    assert seen >= len(PAGES) * len(schemes) * 3
    # dark really is dark and light really is light: the scheme is honoured
    if len(schemes) == 2:
        await page.emulate_media(color_scheme="dark")
        await page.goto(f"{base}/?skin={skin}")
        dark_bg = Color((await page.evaluate(PROBE))["probes"][0]["bg"])
        await page.emulate_media(color_scheme="light")
        await page.goto(f"{base}/?skin={skin}")
        light_bg = Color((await page.evaluate(PROBE))["probes"][0]["bg"])
        assert dark_bg.luminance() < 0.2 < light_bg.luminance()
