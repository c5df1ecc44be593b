"""The shared parts in service/: TTL cache, rate limiter, .env reading, single flight,
shared template code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jinja2
import pytest

from service import ratelimit, ttlcache
from service.settings import Config, read_dotenv
from service.tasks import SingleFlight
from service.web import SharedTemplateCode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ttlcache.time, "monotonic", c)
    return c


def test_ttl_cache_expires_and_evicts_least_recently_used(clock: Clock) -> None:
    cache: ttlcache.TTLCache[str] = ttlcache.TTLCache(2, 1.0)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # "a" is now the most recently used
    cache.put("c", "C")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    clock.now += 1.01
    assert cache.get("a") is None and len(cache) == 1  # expired entries are dropped
    disabled: ttlcache.TTLCache[str] = ttlcache.TTLCache(0, 1.0)
    disabled.put("a", "A")
    assert disabled.get("a") is None


def test_rate_limiter_per_key_limits_and_window() -> None:
    limiter = ratelimit.RateLimiter(2, 60.0)
    assert [limiter.allow("ip", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("peer", 1, now=0.0) and not limiter.allow("peer", 1, now=1.0)
    assert limiter.allow("ip", now=60.0)  # the window slid past the first hits


def test_rate_limiter_keeps_a_limited_key_when_its_table_fills() -> None:
    # the hub's old limiter forgot every count when its table filled: a peer at its
    # limit was let through again. Idle keys go first now.
    limiter = ratelimit.RateLimiter(1, 60.0, max_keys=3)
    assert limiter.allow("busy", now=100.0)
    for i in range(2):
        assert limiter.allow(f"old{i}", now=0.0)
    assert limiter.allow("fresh", now=100.0)  # table full: the idle "old" keys are dropped
    assert not limiter.allow("busy", now=100.0)


def test_dotenv_keeps_secrets_literal_and_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nexport SITE_NAME='Soup $HOME kitchen'\n"
                   'WB_SKIN="dark"\nNO_EQUALS\nWB_SECRET=a$b#c\n', encoding="utf-8")
    assert read_dotenv(env) == {"SITE_NAME": "Soup $HOME kitchen", "WB_SKIN": "dark",
                                "WB_SECRET": "a$b#c"}
    config = Config({}, environ={"WB_SKIN": "light"}, dotenv=env)
    assert config["SITE_NAME"] == "Soup $HOME kitchen" and config["WB_SKIN"] == "light"
    assert read_dotenv(tmp_path / "missing.env") == {}


async def test_single_flight_shares_one_computation_its_error_and_outlives_a_cancelled_caller():
    flights: SingleFlight[str, int] = SingleFlight()
    gate, runs = asyncio.Event(), []

    async def compute() -> int:
        runs.append(1)
        await gate.wait()
        return 7

    first = asyncio.create_task(flights.run("k", compute))
    others = [asyncio.create_task(flights.run("k", compute)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()  # the one that started it gives up: the others still get the answer
    gate.set()
    assert await asyncio.gather(*others) == [7, 7, 7] and len(runs) == 1
    assert await flights.run("k", compute) == 7 and len(runs) == 2  # ended: a new flight

    async def fail() -> int:
        raise ValueError("no")

    results = await asyncio.gather(flights.run("e", fail), flights.run("e", fail),
                                   return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]


def test_template_code_is_compiled_once_per_process_and_again_when_the_source_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str | None] = []
    real = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    (tmp_path / "page.html").write_text("<p>{{ who }}</p>")
    shared = SharedTemplateCode()

    def env() -> jinja2.Environment:  # each app builds its own, alike
        return jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)),
                                  autoescape=True, bytecode_cache=shared)

    assert env().get_template("page.html").render(who="<a>") == "<p>&lt;a&gt;</p>"
    assert env().get_template("page.html").render(who="b") == "<p>b</p>"
    assert compiled == ["page.html"]  # the second Environment loaded the code
    (tmp_path / "page.html").write_text("<b>{{ who }}</b>")
    assert env().get_template("page.html").render(who="c") == "<b>c</b>"
    assert compiled == ["page.html", "page.html"]
