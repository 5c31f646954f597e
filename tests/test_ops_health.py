import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest

from bot.app import Running, app_health
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, Store, open_store
from bot.ops.health import Health, Metrics, database_check, serve
from tests.clock import FakeClock


async def answering(value: bool) -> bool:
    return value


def constant(value: bool):
    return lambda: answering(value)


@pytest.fixture
async def server():
    """Serve a fresh Health and Metrics on a free loopback port; yields (health, metrics, get)."""
    health, metrics = Health(), Metrics()
    runner = await serve(health, metrics, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def get(path: str) -> tuple[int, str, str]:
            async with session.get(path) as response:
                return response.status, response.headers["Content-Type"], await response.text()

        yield health, metrics, get
    await runner.cleanup()


async def test_healthz_is_ok_when_every_check_passes(server):
    health, _, get = server
    health.add_check("db", constant(True))
    health.add_check("platform:telegram", constant(True))
    status, content_type, body = await get("/healthz")
    assert status == 200 and content_type.startswith("application/json")
    assert '"status": "ok"' in body and '"platform:telegram": "ok"' in body


async def test_healthz_names_the_failing_check(server):
    health, _, get = server
    scheduler_alive = True

    async def scheduler_check() -> bool:
        return scheduler_alive

    health.add_check("db", constant(True))
    health.add_check("scheduler", scheduler_check)
    assert (await get("/healthz"))[0] == 200

    scheduler_alive = False
    status, _, body = await get("/healthz")
    assert status == 503
    assert '"failing": ["scheduler"]' in body and '"db": "ok"' in body


async def test_a_raising_or_stuck_check_fails_without_breaking_the_others():
    never = asyncio.Event()

    async def raises() -> bool:
        raise ConnectionError("gateway closed")

    async def stuck() -> bool:
        await never.wait()
        return True

    health = Health()
    health.add_check("platform:discord", raises)
    health.add_check("db", constant(True))
    assert await health.status() == {"platform:discord": "error", "db": "ok"}

    # A zero timeout gives up on whatever has not finished at once: no wall-clock wait.
    impatient = Health(timeout=0)
    impatient.add_check("platform:telegram", stuck)
    assert await impatient.status() == {"platform:telegram": "timeout"}


async def test_database_check_follows_the_store(tmp_path):
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    health = Health()
    health.add_check("db", database_check(store))
    assert await health.status() == {"db": "ok"}
    await store.close()
    assert await health.status() == {"db": "error"}


async def test_metrics_show_what_was_counted(server):
    _, metrics, get = server
    metrics.posts_sent.labels(platform="telegram").inc()
    metrics.posts_sent.labels(platform="telegram").inc()
    metrics.answers.labels(platform="discord").inc()
    metrics.errors.labels(kind="chat_gone").inc()
    metrics.commands.labels(command="quiz").inc(3)
    metrics.send_seconds.labels(platform="telegram").observe(0.2)
    status, content_type, body = await get("/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert 'dailyq_posts_sent_total{platform="telegram"} 2.0' in body
    assert 'dailyq_answers_total{platform="discord"} 1.0' in body
    assert 'dailyq_errors_total{kind="chat_gone"} 1.0' in body
    assert 'dailyq_commands_total{command="quiz"} 3.0' in body
    assert 'dailyq_send_seconds_bucket{le="0.25",platform="telegram"} 1.0' in body
    assert 'dailyq_send_seconds_bucket{le="0.1",platform="telegram"} 0.0' in body


def test_two_apps_in_one_process_count_separately():
    first, second = Metrics(), Metrics()
    first.posts_sent.labels(platform="telegram").inc()
    assert b'dailyq_posts_sent_total{platform="telegram"} 1.0' in first.exposition()
    assert b"dailyq_posts_sent_total{" not in second.exposition()


async def test_a_taken_port_is_an_error_and_leaves_nothing_running(server):
    health, metrics, _ = server
    first = await serve(health, metrics, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await serve(health, metrics, "127.0.0.1", first.addresses[0][1])
    finally:
        await first.cleanup()


async def test_healthz_names_the_database_and_whether_it_answers(store: Store) -> None:
    clock = FakeClock(datetime(2026, 3, 2, tzinfo=UTC))
    core = Core(store, Bank([]), Settings(), clock)
    health = app_health(Running(store, core, Scheduler(store, core, {}, clock)), {})
    runner = await serve(health, Metrics(), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            report = await response.json()
    finally:
        await runner.cleanup()
    assert report["database"] == store.backend in ("sqlite", "postgresql")
    assert report["checks"]["db"] == "ok"


async def test_metrics_show_the_database_pool(postgres_database: str, server) -> None:
    _, metrics, get = server
    store = await open_store(postgres_database, pool_size=4)
    try:
        metrics.watch_pool(store.pool_figures)
        await asyncio.gather(*(store.ping() for _ in range(3)))
        _, _, body = await get("/metrics")
    finally:
        await store.close()
    assert "dailyq_db_pool_max_connections 4.0" in body
    assert 'dailyq_db_pool_connections{state="in_use"} 0.0' in body
    idle = next(line for line in body.splitlines() if line.startswith('dailyq_db_pool_connections{state="idle"}'))
    assert 1 <= float(idle.split()[-1]) <= 4


async def test_healthz_reports_facts_beside_the_checks(server):
    health, metrics, get = server
    leading = False
    health.add_check("db", constant(True))
    health.add_fact("leader", lambda: leading)
    metrics.scheduler_leader.set_function(lambda: int(leading))

    status, _, body = await get("/healthz")
    assert status == 200 and '"leader": false' in body, "a follower is healthy"
    assert "dailyq_scheduler_leader 0.0" in (await get("/metrics"))[2]

    leading = True
    assert '"leader": true' in (await get("/healthz"))[2]
    assert "dailyq_scheduler_leader 1.0" in (await get("/metrics"))[2]
