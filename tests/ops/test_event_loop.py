"""WB_EVENT_LOOP (#24): `wb serve` runs on uvloop when it is installed (auto) or asked for,
on asyncio's loop when asked, and refuses anything else before it starts."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from click.testing import CliRunner

from ops.cli import root
from service import serving

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_the_loop_factory_follows_the_setting() -> None:
    assert serving.event_loop_factory("asyncio") is None
    auto = serving.event_loop_factory("auto")
    if HAVE_UVLOOP:
        import uvloop

        assert auto is uvloop.new_event_loop
        assert serving.event_loop_factory("uvloop") is uvloop.new_event_loop
    else:
        assert auto is None
        with pytest.raises(ValueError, match="not installed"):
            serving.event_loop_factory("uvloop")
    for bad in ("", "trio", "UVLOOP "):
        with pytest.raises(ValueError, match="one of auto, asyncio, uvloop"):
            serving.event_loop_factory(bad)


def test_run_serves_on_the_chosen_loop() -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    for choice in ("asyncio", "auto"):
        factory = serving.event_loop_factory(choice)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    assert seen[0].startswith("asyncio")
    assert seen[1].startswith("uvloop" if HAVE_UVLOOP else "asyncio")


def test_serve_refuses_an_unknown_loop_before_starting(tmp_path) -> None:
    result = CliRunner().invoke(root, ["serve"], env={
        "WB_EVENT_LOOP": "twisted", "WB_DATA_DIR": str(tmp_path),
        "WB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.exit_code != 0
    assert "event loop must be one of auto, asyncio, uvloop" in result.output
    assert not (tmp_path / "pgdata").exists()  # nothing was started


def test_hub_serve_runs_on_the_chosen_loop(tmp_path, monkeypatch) -> None:
    """`wb hub serve` reads WB_EVENT_LOOP too (#24: the stream's fan-out is measured against
    a bare broadcast on the loop the hub picks)."""
    seen: list[object] = []
    monkeypatch.setattr(serving, "run", lambda *_a, loop_factory=None: seen.append(loop_factory))
    env = {"WB_HUB_DATA_DIR": str(tmp_path),
           "WB_HUB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    for choice in ("asyncio", "auto"):
        result = CliRunner().invoke(root, ["hub", "serve"], env={**env, "WB_EVENT_LOOP": choice})
        assert result.exit_code == 0, result.output
    assert seen == [None, serving.event_loop_factory("auto")]
    result = CliRunner().invoke(root, ["hub", "serve"], env={**env, "WB_EVENT_LOOP": "twisted"})
    assert result.exit_code != 0
    assert "event loop must be one of auto, asyncio, uvloop" in result.output
    assert len(seen) == 2  # refused before serving
