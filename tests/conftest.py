"""Fixtures that several test files share. First the database every store, engine and scheduler
test runs on: SQLite and PostgreSQL, one fixture.

`database` is a DAILYQ_DB value for an empty database, once per backend: a SQLite file in the
test's directory, or a PostgreSQL schema of the test's own on the server at DAILYQ_TEST_POSTGRES
(the URL names it with `?search_path=`, so the store's pool, a `dailyq` subprocess and copy-db all
land in it), dropped after the test. `store` is that database opened.

Without a server the PostgreSQL runs are skipped, with how to start one; with CI=true they fail.

`sql_rows` and `sql_execute` are a test's own look into the tables (and its way to set up what no
command makes), on either backend.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from bot.config import Settings, shown_database
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.store import PostgreSQLStore, SQLiteStore, Store, iso, open_store
from bot.feedback import reviewer_from
from tests.clock import FakeClock
from tests.fakes.openai_api import API_KEY, MODEL, FakeOpenAI

POSTGRES_URL = os.environ.get("DAILYQ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
HOW_TO_START = (
    "start one with `pg_ctlcluster 15 main start` (or docker run -p 127.0.0.1:5432:5432 "
    "-e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15), "
    "or point DAILYQ_TEST_POSTGRES at one"
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL, once it has answered; a skip (a failure under CI=true) if it does not."""
    # On a thread of its own: the check's event loop must not touch the tests' loops.
    with ThreadPoolExecutor(1) as thread:
        problem = thread.submit(asyncio.run, _server_problem(POSTGRES_URL)).result()
    if problem is not None:
        reason = f"no PostgreSQL at {shown_database(POSTGRES_URL)} ({problem}): {HOW_TO_START}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true needs PostgreSQL: {reason}", pytrace=False)
        pytest.skip(reason)
    return POSTGRES_URL


async def _server_problem(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


def with_search_path(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (asyncpg takes unknown query
    parameters as server settings)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"] + [("search_path", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend this run of the test is on: "sqlite" or "postgresql" (then the server answers)."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")
    return request.param


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Path | str]:
    if backend == "sqlite":
        yield tmp_path / "dailyq.sqlite3"
        return
    async with postgres_schema() as url:
        yield url


@pytest.fixture
async def postgres_database(postgres_server: str) -> AsyncIterator[str]:
    """For the tests that only a server has: a URL to a schema of the test's own."""
    async with postgres_schema() as url:
        yield url


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    schema = f"dq_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(POSTGRES_URL, schema)
        # A session a test left inside a transaction would make the drop wait: not for long.
        await admin.execute("SET lock_timeout = '10s'")
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    opened = await open_store(database)
    try:
        yield opened
    finally:
        await opened.close()


# --- raw SQL in tests, on either backend ---------------------------------------------------------


async def sql_rows(store: Store, sql: str, *params: object) -> list[tuple]:
    """The rows of `sql` (`?` placeholders), with values as the SQLite file holds them (flags 0/1,
    instants and days as ISO text), so that one expected value serves both backends."""
    if isinstance(store, SQLiteStore):
        return [tuple(row) for row in await store.db.execute_fetchall(sql, [_as_sqlite(p) for p in params])]
    assert isinstance(store, PostgreSQLStore)
    return [tuple(_as_sqlite(value) for value in row) for row in await store.pool.fetch(_numbered(sql), *params)]


async def sql_execute(store: Store, sql: str, *params: object) -> None:
    """Run one statement (`?` placeholders; flags, instants and days as Python values) in its own
    transaction. A constraint it breaks raises the backend's own error: see INTEGRITY_ERRORS."""
    if isinstance(store, SQLiteStore):
        values = [_as_sqlite(p) for p in params]
        await store.write(lambda db: db.execute(sql, values))
        return
    assert isinstance(store, PostgreSQLStore)
    await store.pool.execute(_numbered(sql), *params)


async def sql_execute_many(store: Store, sql: str, rows: list[tuple]) -> None:
    """One statement for each of `rows`, all in one transaction."""
    if isinstance(store, SQLiteStore):
        values = [tuple(_as_sqlite(p) for p in row) for row in rows]
        await store.write(lambda db: db.executemany(sql, values))
        return
    assert isinstance(store, PostgreSQLStore)
    await store.pool.executemany(_numbered(sql), rows)


INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL numbers them: $1, $2, …"""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


def _as_sqlite(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- feedback: a core whose reviewer talks to the fake OpenAI-compatible server ---------------


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI-compatible server, for the feedback tests."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def core_with_feedback(
    tmp_path: Path, llm: FakeOpenAI
) -> AsyncIterator[Callable[[Bank, FakeClock], Awaitable[Core]]]:
    """Makes a core on a fresh SQLite file whose reviewer the settings build, as the app does,
    pointed at `llm`; closes them after the test."""
    made: list[Core] = []

    async def make(bank: Bank, clock: FakeClock) -> Core:
        settings = Settings(
            db=tmp_path / "dailyq.sqlite3",
            lang="en",
            llm_url=llm.base_url,
            llm_model=MODEL,
            llm_api_key=API_KEY,
        )
        reviewer = reviewer_from(settings)
        assert reviewer is not None
        core = Core(
            await SQLiteStore.open(settings.db),
            bank,
            settings,
            clock,
            random.Random(7),
            fuzz=False,
            reviewer=reviewer,
        )
        made.append(core)
        return core

    yield make
    llm.release()
    for core in made:
        await core.reviewer.close()  # type: ignore[union-attr]
        await core.store.close()
