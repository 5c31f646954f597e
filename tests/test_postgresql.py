"""PostgreSQL only: the URL and its password, the pool, migrations from several processes, and a
database that goes away under a running store (connections cut, a transaction cut in the middle).

What both backends share (every Store method) is tested on both in test_store.py and the engine
and scheduler tests; this file is what only a server has.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.cli import main as cli_main
from bot.config import ConfigError, Settings, shown_database
from bot.core.model import ChatRef
from bot.core.store import DatabaseUnavailable, PostgreSQLStore, open_store
from bot.core.store.tables import TABLES
from bot.ops.logs import secrets_from
from tests.conftest import with_search_path
from tests.fakes.postgres_auth import RefusingPostgres
from tests.fakes.tcp_proxy import FlakyProxy
from tests.fakes.telegram_api import FakeTelegram, private_chat
from tests.test_app import ALICE, WAIT, bank_markdown, bot_env, bot_process

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
GROUP = ChatRef("telegram", "-100")
SECRET = "pa55-w0rd_never-shown"


@pytest.fixture
def schema_url(postgres_database: str) -> str:
    return postgres_database


@pytest.fixture
async def pg(schema_url: str) -> AsyncIterator[PostgreSQLStore]:
    store = await open_store(schema_url)
    assert isinstance(store, PostgreSQLStore)
    try:
        yield store
    finally:
        await store.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def run_dailyq(url: str, where: Path) -> tuple[int, str]:
    """`dailyq run` with this DAILYQ_DB, in `where` (away from the checkout's .env), until it
    exits; its exit code and stderr."""
    env = {
        **os.environ,
        "DAILYQ_DB": url,
        "TELEGRAM_BOT_TOKEN": "123456:test-token",
        "TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}/bot",  # never reached: the database fails first
    }
    env.pop("DISCORD_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=where, env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def database_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "database" in line]


async def test_a_refused_password_is_one_line_at_start_and_the_password_is_never_shown(tmp_path: Path) -> None:
    async with RefusingPostgres() as server:
        url = f"postgresql://dailyq:{SECRET}@127.0.0.1:{server.port}/dailyq"
        code, stderr = await run_dailyq(url, tmp_path)
        port = server.port
    assert server.passwords == [SECRET]  # it was really tried, and refused
    assert code == 2
    assert not any(os.scandir(tmp_path))  # no lock file, no folder named after the URL
    assert "Traceback" not in stderr and SECRET not in stderr
    (line,) = database_lines(stderr)
    assert line.endswith(
        f"cannot open the database postgresql://dailyq:***@127.0.0.1:{port}/dailyq: "
        'InvalidPasswordError: password authentication failed for user "dailyq"'
    )


async def test_a_server_that_cannot_be_reached_is_one_line_at_start(tmp_path: Path) -> None:
    url = f"postgresql://dailyq:{SECRET}@127.0.0.1:{free_port()}/dailyq"
    code, stderr = await run_dailyq(url, tmp_path)
    assert code == 2
    assert "Traceback" not in stderr and SECRET not in stderr
    (line,) = database_lines(stderr)
    assert "cannot open the database postgresql://dailyq:***@127.0.0.1:" in line
    assert "Connect call failed" in line or "refused" in line.lower()


def test_the_password_in_a_url_is_masked_for_messages_and_redacted_from_logs() -> None:
    url = f"postgresql://dailyq:{SECRET}@db.example.org:5432/dailyq?search_path=bot"
    assert shown_database(url) == "postgresql://dailyq:***@db.example.org:5432/dailyq?search_path=bot"
    assert shown_database("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"
    settings = Settings.from_env({"DAILYQ_DB": url})
    assert settings.db == url and SECRET not in repr(settings)
    assert SECRET in secrets_from(settings)
    encoded = Settings.from_env({"DAILYQ_DB": "postgresql://dailyq:p%40ss@db/dailyq"})
    assert "p@ss" in secrets_from(encoded)  # the password as the server gets it, and as written
    assert Settings.from_env({"DAILYQ_DB": "data/x.sqlite3"}).db == Path("data/x.sqlite3")


def test_the_pool_size_comes_from_the_environment() -> None:
    assert Settings.from_env({}).db_pool_size == 10
    assert Settings.from_env({"DAILYQ_DB_POOL_SIZE": "3"}).db_pool_size == 3
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="DAILYQ_DB_POOL_SIZE"):
            Settings.from_env({"DAILYQ_DB_POOL_SIZE": bad})


async def test_the_pool_opens_no_more_connections_than_its_size(schema_url: str) -> None:
    store = await open_store(schema_url, pool_size=2)
    try:
        counts = await asyncio.gather(*(store.user_data_counts(f"telegram:{n}") for n in range(20)))
        assert counts == [(0, 0)] * 20
        figures = store.pool_figures()
        assert figures.max_size == 2 and 1 <= figures.size <= 2
    finally:
        await store.close()


async def test_processes_starting_together_migrate_once(schema_url: str) -> None:
    stores = await asyncio.gather(*(open_store(schema_url) for _ in range(3)))
    try:
        versions = {await store.schema_version() for store in stores}
        assert len(versions) == 1 and versions.pop() > 0
    finally:
        for store in stores:
            await store.close()


async def test_a_database_from_a_newer_dailyq_is_refused(pg: PostgreSQLStore, schema_url: str) -> None:
    version = await pg.schema_version()
    connection = await asyncpg.connect(schema_url)
    try:
        await connection.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", version + 1)
    finally:
        await connection.close()
    with pytest.raises(RuntimeError, match="newer dailyq"):
        await open_store(schema_url)


async def terminate_store_connections(schema_url: str) -> int:
    """pg_terminate_backend on every connection the bot's store holds on this schema."""
    admin = await asyncpg.connect(schema_url)
    try:
        return await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'dailyq bot ' || current_schema()"
        )
    finally:
        await admin.close()


async def test_connections_killed_under_a_store_are_replaced_without_the_caller_noticing(
    pg: PostgreSQLStore, schema_url: str
) -> None:
    await pg.save_chat(GROUP, True, {"time": "09:00"}, NOW, revision=0, subscribed=True)
    assert await terminate_store_connections(schema_url) >= 1
    assert (await pg.chat(GROUP.key)).subscribed  # a read
    assert await terminate_store_connections(schema_url) >= 1
    assert await pg.unsubscribe(GROUP.key)  # a write
    assert not (await pg.chat(GROUP.key)).subscribed


async def test_a_transaction_cut_in_the_middle_leaves_nothing_written(pg: PostgreSQLStore, schema_url: str) -> None:
    first = await pg.add_quiz(GROUP, True, "telegram:1", "Ann", "q1", "", NOW)
    admin = await asyncpg.connect(schema_url)
    try:
        # Hold the row the next /quiz's last statement must change, so that it waits there: its
        # chat, user and post statements have run, uncommitted, when its connection is killed.
        locker = admin.transaction()
        await locker.start()
        await admin.execute("SELECT 1 FROM open_questions WHERE user_key = 'telegram:1' FOR UPDATE")
        second = asyncio.create_task(pg.add_quiz(GROUP, True, "telegram:1", "Ann B.", "q2", "", NOW))
        waiting = None
        while waiting is None:  # until the /quiz waits on the lock (an event, not a time)
            await asyncio.sleep(0.01)
            waiting = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
        await admin.execute("SELECT pg_terminate_backend($1)", waiting)
        await locker.rollback()
    finally:
        await admin.close()
    with pytest.raises(DatabaseUnavailable):
        await second
    assert await pg.row_counts() == {
        **dict.fromkeys(TABLES, 0), "chats": 1, "users": 1, "posts": 1, "open_questions": 1,
    }  # fmt: skip
    assert (await pg.open_question("telegram:1", GROUP.key)).post.id == first.id
    assert await pg.answerers(first.id) == []
    # And the store goes on: the same /quiz now goes through, under the new name.
    await pg.add_quiz(GROUP, True, "telegram:1", "Ann B.", "q2", "", NOW)
    assert (await pg.open_question("telegram:1", GROUP.key)).post.question_id == "q2"


@asynccontextmanager
async def through_a_proxy(schema_url: str) -> AsyncIterator[tuple[FlakyProxy, str]]:
    """A proxy in front of the test server, and `schema_url` through it."""
    server = urlsplit(schema_url)
    async with FlakyProxy(server.hostname or "127.0.0.1", server.port or 5432) as proxy:
        user = server.netloc.rpartition("@")[0]
        yield proxy, urlunsplit(server._replace(netloc=f"{user}@127.0.0.1:{proxy.port}"))


async def test_a_connection_cut_while_idle_is_replaced_on_its_next_use(schema_url: str) -> None:
    async with through_a_proxy(schema_url) as (proxy, proxied):
        store = await open_store(proxied, pool_size=1)
        try:
            await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
            # Cut, and back at once: the pooled connection is dead, and nothing has noticed yet.
            proxy.down()
            proxy.up()
            assert (await store.chat(GROUP.key)).subscribed  # a read
            proxy.down()
            proxy.up()
            assert await store.unsubscribe(GROUP.key)  # a write: nothing was sent on the dead one
        finally:
            await store.close()


async def test_after_a_restart_every_pooled_connection_is_replaced_not_tried_one_by_one(schema_url: str) -> None:
    async with through_a_proxy(schema_url) as (proxy, proxied):
        store = await open_store(proxied, pool_size=3)
        try:
            await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
            await asyncio.gather(*(store.chat(GROUP.key) for _ in range(3)))
            assert store.pool_figures().size == 3
            # Every connection is dead, and none knows it yet: the read meets one dead connection
            # (and tries again), not one after another.
            proxy.sever()
            assert (await store.chat(GROUP.key)).subscribed
            assert await store.unsubscribe(GROUP.key)
        finally:
            await store.close()


async def test_while_the_server_is_away_calls_fail_fast_and_work_again_after(schema_url: str) -> None:
    async with through_a_proxy(schema_url) as (proxy, proxied):
        store = await open_store(proxied)
        try:
            await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
            proxy.down()
            with pytest.raises(DatabaseUnavailable):
                await store.chat(GROUP.key)
            with pytest.raises(DatabaseUnavailable):
                await store.unsubscribe(GROUP.key)
            assert not await store.ping()
            proxy.up()
            assert await store.ping()
            assert (await store.chat(GROUP.key)).subscribed  # the failed unsubscribe wrote nothing
            assert await store.unsubscribe(GROUP.key)
        finally:
            await store.close()


def test_the_search_path_rides_on_the_url() -> None:
    assert with_search_path("postgresql://u@h/db", "s1") == "postgresql://u@h/db?search_path=s1"
    assert with_search_path("postgresql://u@h/db?sslmode=disable&search_path=x", "s2") == (
        "postgresql://u@h/db?sslmode=disable&search_path=s2"
    )


async def test_a_running_bot_answers_through_killed_connections_and_an_outage(
    schema_url: str, tmp_path: Path
) -> None:
    bank = tmp_path / "bank.md"
    bank.write_text(bank_markdown("First", "Second", "Third"), encoding="utf-8")
    async with FakeTelegram() as tg, through_a_proxy(schema_url) as (proxy, proxied):
        env = bot_env(tmp_path, bank, DAILYQ_DB=proxied, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.base_url)
        async with bot_process(env, "run", cwd=tmp_path) as bot:
            await bot.line_with("telegram: running as")

            async def ask(text: str) -> str:
                tg.user_says(private_chat(ALICE), ALICE, text)
                [reply] = await tg.wait_for("sendMessage", chat_id=ALICE.id, within=WAIT)
                return reply.text

            await ask("/quiz")
            assert "Got your answer" in await ask("keys and values")
            # The server restarts: every connection the bot held is gone; the next command does
            # not notice (a connection found dead before anything was sent on it is replaced).
            assert await terminate_store_connections(schema_url) >= 1
            assert "Answered: 1" in await ask("/stats")
            # The server is away: each command is answered that something went wrong, with one log
            # line, and nothing is half-written; once it is back the bot carries on.
            proxy.down()
            assert "try again" in await ask("again, while the database is away")
            assert "try again" in await ask("/quiz")
            proxy.up()
            assert "Answered: 1" in await ask("/stats")
            assert "Replaced your earlier answer" in await ask("keys and values, once more")
            assert await bot.stop() == 0, bot.output
    assert "Traceback" not in bot.output, bot.output
    away = [line for line in bot.output.splitlines() if "the database did not answer" in line]
    assert len(away) == 2, bot.output


def test_reload_on_postgresql_names_an_unreachable_server_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # a lock file would land here, named after the URL and its password
    monkeypatch.setenv("DAILYQ_DB", f"postgresql://dailyq:{SECRET}@127.0.0.1:{free_port()}/dailyq")
    assert cli_main(["reload"]) == 1  # it NOTIFYs the processes through the database: not there
    error = capsys.readouterr().err
    assert "dailyq reload: cannot reach postgresql://dailyq:***@127.0.0.1" in error and SECRET not in error
    assert not any(os.scandir(tmp_path))


def test_reload_on_postgresql_says_when_no_bot_listens(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAILYQ_DB", postgres_database)
    assert cli_main(["reload"]) == 1
    assert "dailyq reload: no dailyq is running on" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["backup", "backups/"], ["restore", "backups/old.sqlite3"]])
def test_backup_and_restore_point_to_pg_dump_on_postgresql(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    monkeypatch.setenv("DAILYQ_DB", f"postgresql://dailyq:{SECRET}@db.example.org/dailyq")
    assert cli_main(command) == 2
    error = capsys.readouterr().err
    assert "pg_dump" in error and SECRET not in error
    assert not any(os.scandir(tmp_path))
