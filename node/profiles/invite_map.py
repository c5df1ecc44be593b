"""The invite map: the invite tree around a member, drawn as SVG on the server.

One recursive query (``queries.map_rows``) finds everyone within ``depth`` hops, in
both directions. Members the viewer may not see become anonymous "member" nodes: no
name, no link, no id in the output. Results are cached per viewer and depth in
``invite_map_cache`` under the graph version they were computed from; a trigger bumps
that version when the graph or anyone's visibility changes, so a stale map is never
served. ``refresh_stale(pool)`` is the scheduler's job, ``wb invite-map refresh`` the
operator's.
"""

from __future__ import annotations

import json
import logging
import time
from html import escape
from typing import Any

import asyncpg

from node.profiles import queries as Q

log = logging.getLogger("wb.node.profiles")

DEFAULT_DEPTH = 2
MAX_DEPTH = 3
MAX_NODES = 400  # beyond this the drawing stops being readable; the rest is counted

_COL_W = 130
_ROW_H = 90
_PAD = 40
_R = 16


async def compute(pool: asyncpg.Pool, *, viewer_id: str, is_admin: bool, depth: int
                  ) -> tuple[int, list[dict[str, Any]]]:
    """(graph version, anonymised nodes) from one consistent snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        version = await Q.graph_version(conn)
        rows = await Q.map_rows(conn, viewer_id=viewer_id, is_admin=is_admin, depth=depth)
    return version, anonymise(rows, viewer_id)


def anonymise(rows: list[asyncpg.Record], viewer_id: str) -> list[dict[str, Any]]:
    """Replace ids by positions; drop everything about members the viewer may not see."""
    index = {r["id"]: i for i, r in enumerate(rows)}
    nodes: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        node: dict[str, Any] = {"n": i, "gen": r["gen"], "dist": r["dist"],
                                "parent": index.get(r["invited_by"]),
                                "self": r["id"] == viewer_id}
        if r["visible"]:
            node.update(username=r["username"], name=r["display_name"] or r["username"])
        else:
            node.update(username=None, name="member")
        nodes.append(node)
    return nodes


def layout(nodes: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
    """Rows by generation; within a row, children follow their parent's order."""
    shown = nodes[:MAX_NODES]
    by_gen: dict[int, list[dict[str, Any]]] = {}
    for node in shown:
        by_gen.setdefault(node["gen"], []).append(node)
    pos: dict[int, tuple[int, int]] = {}
    order: dict[int, float] = {}
    for row, gen in enumerate(sorted(by_gen)):
        members = by_gen[gen]
        members.sort(key=lambda n: (order.get(n["parent"], -1.0), n["name"].lower(), n["n"]))
        for col, node in enumerate(members):
            pos[node["n"]] = (_PAD + col * _COL_W + _COL_W // 2, _PAD + row * _ROW_H + _R)
            order[node["n"]] = float(col)
    return pos


def _label(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def render_svg(nodes: list[dict[str, Any]], depth: int) -> str:
    """A standalone SVG document; presentation attributes only (the CSP forbids styles)."""
    pos = layout(nodes)
    width = max([x for x, _ in pos.values()] + [0]) + _COL_W // 2 + _PAD
    height = max([y for _, y in pos.values()] + [0]) + _R + 30 + _PAD
    hidden = len(nodes) - len(pos)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="group" '
           f'aria-label="Invite map, depth {depth}" font-family="sans-serif" '
           f'font-size="12"><title>Invite map, depth {depth}</title>']
    for node in nodes:
        parent = node["parent"]
        if node["n"] in pos and parent is not None and parent in pos:
            (x1, y1), (x2, y2) = pos[parent], pos[node["n"]]
            out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#9aa3b2" '
                       f'stroke-width="1.5"/>')
    for node in nodes:
        if node["n"] not in pos:
            continue
        x, y = pos[node["n"]]
        anon = node["username"] is None
        fill = "#2457c5" if node["self"] else ("#d9dde5" if anon else "#ffffff")
        label = escape(_label(node["name"]))
        shape = (f'<circle cx="{x}" cy="{y}" r="{_R}" fill="{fill}" stroke="#2457c5" '
                 f'stroke-width="{3 if node["self"] else 1.5}"/>'
                 f'<text x="{x}" y="{y + _R + 16}" text-anchor="middle" '
                 f'fill="{"#5b6475" if anon else "#1d2330"}">{label}</text>')
        if anon:
            out.append(f'<g class="anon">{shape}</g>')
        else:
            href = escape(f"/people/{node['username']}")
            title = escape(f"{node['name']} (@{node['username']})")
            out.append(f'<a href="{href}"><title>{title}</title>{shape}</a>')
    if hidden:
        out.append(f'<text x="{_PAD}" y="{height - 12}" fill="#5b6475">and {hidden} more '
                   f'members not drawn</text>')
    out.append("</svg>")
    return "".join(out)


async def get_map(pool: asyncpg.Pool, *, viewer_id: str, is_admin: bool, depth: int
                  ) -> dict[str, Any]:
    """The cached map when current, else computed, stored and returned."""
    row = await Q.cached_map(pool, viewer_id, depth)
    if row is not None:
        return {"nodes": json.loads(row["nodes"]), "svg": row["svg"], "cached": True,
                "graph_version": row["graph_version"]}
    return await rebuild(pool, viewer_id=viewer_id, is_admin=is_admin, depth=depth)


async def rebuild(pool: asyncpg.Pool, *, viewer_id: str, is_admin: bool, depth: int
                  ) -> dict[str, Any]:
    started = time.perf_counter()
    version, nodes = await compute(pool, viewer_id=viewer_id, is_admin=is_admin, depth=depth)
    svg = render_svg(nodes, depth)
    elapsed = (time.perf_counter() - started) * 1000
    await Q.store_map(pool, viewer_id=viewer_id, depth=depth, version=version,
                      nodes=json.dumps(nodes), svg=svg, compute_ms=elapsed)
    log.info("invite map computed", extra={"depth": depth, "nodes": len(nodes),
                                           "ms": round(elapsed, 1)})
    return {"nodes": nodes, "svg": svg, "cached": False, "graph_version": version}


async def refresh_stale(pool: asyncpg.Pool, *, everything: bool = False) -> dict[str, int]:
    """Recompute cached maps whose graph changed (all of them with ``everything``).

    Maps of disabled or deleted viewers, and stale maps not recomputed for a week (their
    viewer has not looked since), are dropped instead: a page view rebuilds them. Safe to
    run concurrently with page views: a store never replaces a newer map.
    """
    rebuilt = dropped = 0
    for entry in await Q.cache_entries(pool, stale_only=not everything):
        if entry["gone"] or (entry["idle"] and not everything):
            await Q.drop_cache(pool, entry["viewer_id"], entry["depth"])
            dropped += 1
            continue
        await rebuild(pool, viewer_id=entry["viewer_id"], is_admin=entry["is_admin"],
                      depth=entry["depth"])
        rebuilt += 1
    return {"rebuilt": rebuilt, "dropped": dropped}
