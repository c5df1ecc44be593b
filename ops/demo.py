"""A small federation on one machine: `wb demo`, and the helpers the end-to-end tests and
the benchmark use to run real `wb hub serve` / `wb serve` processes.

``federate`` wires a hub and nodes together the way an operator would: each node gets a
hub peer account (token + its public key) on the hub, and each node gets the hub as a
sync peer with the other nodes' keys pinned. The nodes then push on change, pull on
their schedule and follow the hub's live stream (``node.sync.scheduling``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import click

from hub import queries as HQ
from hub.app import MIGRATIONS as HUB_MIGRATIONS
from node.app import MIGRATIONS
from node.auth import queries as auth_queries
from node.auth import service as auth
from node.errors import AppError
from node.profiles import service as profiles
from node.requests import service as reqs
from node.sync import peers
from node.sync.identity import ensure_state, load_or_create_key
from service import db
from service.ids import new_token, token_hash
from service.logs import setup_logging
from service.settings import Config
from service.tasks import cancel_and_wait

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    """One server process (`wb hub serve` or `wb serve`) with its own environment."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = (open(self.log_path, "ab") if self.log_path is not None  # noqa: SIM115
               else subprocess.DEVNULL)
        from service.lifetime import preexec_die_with_parent

        command = [sys.executable, "-m", "ops.cli", *self.args]
        # Its own session (Ctrl-C reaches only `wb demo`, which stops it in order), but
        # killed with us: a SIGKILLed `wb demo` must not leave servers behind. They own
        # no database (it is the demo's), so SIGKILL loses nothing.
        self.proc = subprocess.Popen(command,  # noqa: S603 - our own CLI
                                     env={**os.environ, **self.env}, cwd=ROOT,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     preexec_fn=preexec_die_with_parent(signal.SIGKILL))
        if out is not subprocess.DEVNULL:
            out.close()

    async def wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}"
                                       + (f"; see {self.log_path}" if self.log_path else ""))
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(f"{self.url}/readyz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {limit} s")

    def stop(self, limit: float = 15.0) -> None:
        """SIGTERM, wait; SIGKILL only if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def hub_proc(name: str, db_url: str, data_dir: Path, port: int | None = None,
             log_path: Path | None = None) -> Proc:
    port = port or free_port()
    env = {"WB_HUB_DATABASE_URL": db_url, "WB_HUB_DATA_DIR": str(data_dir),
           "WB_HUB_URL": f"http://127.0.0.1:{port}", "WB_LOG_LEVEL": "WARNING"}
    return Proc(name, ["hub", "serve", "--host", "127.0.0.1", "--port", str(port),
                       "--verify-processes", "0"], env, port, log_path)


def node_env(db_url: str, data_dir: Path, port: int, site_name: str,
             sync_interval: int = 60) -> dict[str, str]:
    return {"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(data_dir),
            "SITE_URL": f"http://127.0.0.1:{port}", "SITE_NAME": site_name,
            "WB_SCHEDULER": "true", "WB_SYNC_INTERVAL": str(sync_interval),
            "WB_LOG_LEVEL": "WARNING", "WB_PORT": str(port),
            # A short grace period so the demo still shows federation promptly.
            "WB_PUBLISH_DELAY": os.environ.get("WB_PUBLISH_DELAY", "10")}


def node_proc(name: str, db_url: str, data_dir: Path, *, port: int | None = None,
              sync_interval: int = 60, log_path: Path | None = None) -> Proc:
    port = port or free_port()
    return Proc(name, ["serve", "--host", "127.0.0.1", "--port", str(port)],
                node_env(db_url, data_dir, port, name.title(), sync_interval), port, log_path)


@dataclass
class NodeInfo:
    name: str
    db_url: str
    data_dir: Path
    origin: str = ""
    public_key: bytes = b""
    hub_token: str = ""
    extra: dict[str, str] = field(default_factory=dict)


async def prepare_node(node: NodeInfo) -> None:
    """Migrate the node database and create its signing key (its origin for life)."""
    await db.migrate_url(node.db_url, "node", MIGRATIONS)
    key = load_or_create_key(_demo_config(node.data_dir))
    conn = await asyncpg.connect(node.db_url)
    try:
        node.origin = await ensure_state(conn, key)
    finally:
        await conn.close()
    node.public_key = key.public_key


async def federate(hub_db_url: str, hub_url: str, nodes: list[NodeInfo]) -> None:
    """Register every node on the hub (token + key) and the hub on every node (pins)."""
    await db.migrate_url(hub_db_url, "hub", HUB_MIGRATIONS)
    conn = await asyncpg.connect(hub_db_url)
    try:
        for node in nodes:
            node.hub_token = node.hub_token or new_token()
            async with conn.transaction():
                await HQ.add_peer(conn, node.name, "node", token_hash(node.hub_token))
                await HQ.trust_key(conn, node.origin, node.origin, node.public_key, node.name)
    finally:
        await conn.close()
    for node in nodes:
        pool = await db.create_pool(node.db_url, max_size=2)
        try:
            await peers.add_peer(pool, "hub", "hub", hub_url, token=node.hub_token,
                             pins=[n.origin for n in nodes if n is not node])
        finally:
            await pool.close()


# --------------------------------------------------------------------------- wb demo

SAMPLE = {
    "alpha": {"members": ["alice", "arjun"],
              "requests": [("Borrow a ladder", "Just for Saturday morning, to clean the "
                                               "gutters."),
                           ("Ride to the clinic", "Tuesday 10am, happy to share fuel.")]},
    "beta": {"members": ["bea", "bruno"],
             "requests": [("Help moving a sofa", "Second floor, no lift. Pizza offered."),
                          ("Spanish conversation", "30 minutes a week, I can teach guitar "
                                                   "back.")]},
}


def _demo_config(data_dir: Path) -> Config:
    return Config({"WB_DATA_DIR": str(data_dir)}, environ={}, dotenv=data_dir / "none.env")


async def seed_sample(db_url: str, site: str, data_dir: Path) -> str:
    """Members (the first one an admin) and public requests, all through the node's own
    services (invite, registration, account, request): the demo writes no SQL of its own,
    so it cannot drift from what the pages do. Running it again adds nothing."""
    config = _demo_config(data_dir)
    pool = await db.create_pool(db_url, max_size=2)
    try:
        plan = SAMPLE[site]
        admin_id, _ = await auth.create_admin(pool, plan["members"][0], via="demo")
        users = [admin_id]
        for username in plan["members"][1:]:
            user = await auth_queries.user_by_username(pool, username)
            if user is None:
                invite = await auth.create_invite(pool, config, {"auto_approve": "on"},
                                                  created_by=admin_id, ip=None, via="demo")
                joined = await auth.register(pool, config, {"username": username},
                                             invite_token=invite.token, ip=None)
                users.append(joined.user_id)
            else:
                users.append(user["id"])
        for user_id, username in zip(users, plan["members"], strict=True):
            values, errors = profiles.validate_account(
                {"display_name": username.title(), "scope": "public"})
            assert not errors, errors
            await profiles.update_account(pool, user_id, values)
        admin = reqs.Actor(admin_id, True, True, None, "demo")
        for i, (title, text) in enumerate(plan["requests"]):
            page = await reqs.feed(pool, admin, status="all", search=title)
            if any(row["title"] == title for row in page.items):
                continue
            actor = reqs.Actor(users[i % len(users)], False, True, None, "demo")
            await reqs.create_request(pool, actor, title=title, description=text,
                                      sync_scope="public")
        return plan["members"][0]
    finally:
        await pool.close()


async def approve_demo_sign_ins(nodes: list[NodeInfo]) -> None:
    """Demo only: approve every pending sign-in at once, so logging in is one step."""
    pools = {n.name: await db.create_pool(n.db_url, max_size=1) for n in nodes}
    try:
        while True:
            for node in nodes:
                config = _demo_config(node.data_dir)
                for row in await auth_queries.pending_requests(pools[node.name]):
                    with contextlib.suppress(AppError):
                        await auth.approve(pools[node.name], config, row["id"], actor_id=None,
                                           ip=None, code=None, via="demo")
            await asyncio.sleep(1.0)
    finally:
        for pool in pools.values():
            await pool.close()


async def run_demo(base: Path, *, sync_interval: int = 15, echo=print) -> None:
    logs = base / "logs"
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    echo(f"Starting the embedded PostgreSQL servers under {base} ...")
    hub_dir = base / "hub"
    hub_db = await asyncio.to_thread(db.start_embedded, hub_dir)
    nodes = []
    for name in ("alpha", "beta"):
        data_dir = base / name
        nodes.append(NodeInfo(name, await asyncio.to_thread(db.start_embedded, data_dir),
                              data_dir))
    fresh = not (hub_dir / "demo-ready").exists()
    for node in nodes:
        await prepare_node(node)
    hub = hub_proc("hub", hub_db, hub_dir, log_path=logs / "hub.log")
    if fresh:
        await federate(hub_db, hub.url, nodes)
    else:  # a second run: same databases, new ports
        await _repoint(nodes, hub.url)
    admins = {n.name: await seed_sample(n.db_url, n.name, n.data_dir) for n in nodes}
    (hub_dir / "demo-ready").write_text("ok\n")
    procs = [hub] + [node_proc(n.name, n.db_url, n.data_dir, sync_interval=sync_interval,
                               log_path=logs / f"{n.name}.log") for n in nodes]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    approver: asyncio.Task[None] | None = None
    try:
        for p in procs:
            p.start()
        await asyncio.gather(*(p.wait_ready() for p in procs))
        approver = asyncio.create_task(approve_demo_sign_ins(nodes))
        echo("")
        echo(f"Hub:   {hub.url}/   (public feed of both nodes)")
        for p, n in zip(procs[1:], nodes, strict=True):
            echo(f"{n.name.title():6} {p.url}/   sign in as '{admins[n.name]}' (admin); "
                 f"sync control at {p.url}/admin/sync-control")
        echo("")
        echo("Sign in: open /login, type the username; the demo approves the sign-in for you "
             "(a real node asks another device or an admin).")
        echo("Post a public request on one node: it shows on the other within about a second.")
        echo(f"Logs: {logs}. Press Ctrl-C to stop everything.")
        await stop.wait()
    finally:
        echo("Stopping ...")
        await cancel_and_wait(approver)
        for p in reversed(procs):
            await asyncio.to_thread(p.stop)
        echo("Stopped.")


async def _repoint(nodes: list[NodeInfo], hub_url: str) -> None:
    for node in nodes:
        pool = await db.create_pool(node.db_url, max_size=1)
        try:
            await peers.update_peer(pool, "hub", location=hub_url, actor="demo")
        finally:
            await pool.close()


def demo_command() -> click.Command:
    @click.command("demo")
    @click.option("--dir", "directory", type=click.Path(path_type=Path),
                  default=Path("var/demo"), show_default=True,
                  help="Where the hub and the two nodes keep their data.")
    @click.option("--sync-interval", type=int, default=15, show_default=True,
                  help="Seconds between scheduled push/pull runs (changes go out at once).")
    def demo(directory: Path, sync_interval: int) -> None:
        """Start a hub and two nodes with sample members and requests; Ctrl-C stops all."""
        setup_logging("WARNING", "text")
        asyncio.run(run_demo(directory.resolve(), sync_interval=sync_interval, echo=click.echo))

    return demo


def public_key_b64(node: NodeInfo) -> str:
    return base64.b64encode(node.public_key).decode()
