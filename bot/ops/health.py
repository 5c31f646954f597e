"""`/healthz` and `/metrics` on one small aiohttp server.

Health is a set of named checks the app registers (`db`, `scheduler`, `platform:telegram`, …),
each an async callable answering "are you working?", and facts reported as they are (`database`:
which backend). Metrics live in a private CollectorRegistry, so two apps (or two tests) in one
process count separately.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.core.store import Store
from bot.core.store.postgresql import PoolFigures

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Fact = Callable[[], object]

# Docker's HEALTHCHECK gives the whole request 5 s; one stuck check must not use all of it.
CHECK_TIMEOUT = 3.0


class Health:
    def __init__(self, timeout: float = CHECK_TIMEOUT) -> None:
        self._checks: dict[str, Check] = {}
        self._facts: dict[str, Fact] = {}
        self._timeout = timeout

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def add_fact(self, name: str, fact: Fact) -> None:
        """Something /healthz reports beside the checks, read at each request (a JSON value)."""
        self._facts[name] = fact

    def facts(self) -> dict[str, object]:
        return {name: fact() for name, fact in self._facts.items()}

    async def status(self) -> dict[str, str]:
        """Every check's state: "ok", "failing" (it said False), "error" (it raised) or "timeout"."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run(self, name: str) -> str:
        try:
            ok = await asyncio.wait_for(self._checks[name](), self._timeout)
        except TimeoutError:
            log.warning("health check %s timed out after %ss", name, self._timeout)
            return "timeout"
        except Exception:
            log.warning("health check %s raised", name, exc_info=True)
            return "error"
        return "ok" if ok else "failing"


def database_check(store: Store) -> Check:
    return store.ping


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.posts_sent = Counter(
            "dailyq_posts_sent",
            "Questions posted (daily posts and quizzes)",
            ["platform"],
            registry=self.registry,
        )
        self.answers = Counter("dailyq_answers", "Answers received", ["platform"], registry=self.registry)
        self.errors = Counter("dailyq_errors", "Errors, by kind", ["kind"], registry=self.registry)
        self.commands = Counter("dailyq_commands", "Commands handled", ["command"], registry=self.registry)
        self.send_seconds = Histogram(
            "dailyq_send_seconds",
            "Time to deliver one reply to a platform",
            ["platform"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.scheduler_leader = Gauge(
            "dailyq_scheduler_leader",
            "1 while this process leads: runs the scheduler's sweeps (and the Telegram poller)",
            registry=self.registry,
        )

    def watch_pool(self, figures: Callable[[], PoolFigures]) -> None:
        """Gauges of the database connection pool (PostgreSQL), read at each scrape."""
        connections = Gauge(
            "dailyq_db_pool_connections",
            "Database connections this process holds, by state",
            ["state"],
            registry=self.registry,
        )
        connections.labels(state="in_use").set_function(lambda: figures().in_use)
        connections.labels(state="idle").set_function(lambda: figures().idle)
        Gauge(
            "dailyq_db_pool_max_connections",
            "The most database connections this process opens (DAILYQ_DB_POOL_SIZE)",
            registry=self.registry,
        ).set_function(lambda: figures().max_size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def serve(health: Health, metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Start serving; `await runner.cleanup()` stops. Port 0 picks a free port: see `runner.addresses`."""

    async def healthz(_: web.Request) -> web.Response:
        checks = await health.status()
        failing = [name for name, state in checks.items() if state != "ok"]
        body = {"status": "failing" if failing else "ok", **health.facts(), "checks": checks}
        if failing:
            body["failing"] = failing
        return web.json_response(body, status=503 if failing else 200)

    async def metrics_text(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_text)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
