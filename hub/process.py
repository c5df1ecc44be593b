"""How `wb hub serve` runs: one serving process, or a supervisor and its workers.

With ``WB_HUB_WORKERS`` above 1 the database is made ready once, by the supervisor,
before the workers fork (``service.workers``): the embedded server when no URL is set
(watched on behalf of the supervisor, so it stops with it) and the migrations. Each worker
then builds its own app.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable

from aiohttp import web

from hub.app import MIGRATIONS, create_app
from hub.typedefs import HubOptions
from service import db, serving, workers
from service.settings import Config

LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


def serving_app(config: Config, options: HubOptions, banner: str) -> web.Application:
    """The hub app, announcing ``banner`` on stderr once it has started."""
    app = create_app(config, options)

    async def announce(_app: web.Application) -> None:
        print(banner, file=sys.stderr, flush=True)

    app.on_startup.append(announce)
    return app


def serve_one(config: Config, options: HubOptions, host: str, port: int,
              limits: serving.ConnectionLimits, loop_factory: LoopFactory) -> None:
    app = serving_app(config, options, f"WhiteBalloon hub running at http://{host}:{port}/")
    serving.run(app, host, port, limits, loop_factory=loop_factory)


def serve_workers(config: Config, options: HubOptions, host: str, port: int,
                  loop_factory: LoopFactory) -> int:
    """Serve with ``options.workers`` processes; the supervisor's exit status."""
    url = config["WB_HUB_DATABASE_URL"]
    if not url:
        url = db.start_embedded(config.path("WB_HUB_DATA_DIR"))
        os.environ["WB_HUB_DATABASE_URL"] = url  # the workers' Config reads it
    asyncio.run(db.migrate_url(url, "hub", MIGRATIONS))
    try:
        sock = workers.listening_socket(host, port)
    except OSError as exc:
        raise serving.ListenError.of(host, port, exc) from None
    print(f"WhiteBalloon hub running at http://{host}:{port}/ ({options.workers} workers)",
          file=sys.stderr, flush=True)

    def serve(index: int, sock: socket.socket, parent_fd: int) -> None:
        worker_config = Config()
        app = serving_app(worker_config, options,
                          f"hub worker {index} ready (pid {os.getpid()})")
        serving.run(app, host, port, serving.ConnectionLimits.from_config(worker_config),
                    loop_factory=loop_factory, sock=sock, parent_fd=parent_fd)

    return workers.supervise(serve, sock, options.workers)
