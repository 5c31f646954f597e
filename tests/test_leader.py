"""Leader election and reload broadcasts on the real PostgreSQL server (bot.core.leader).

Electors campaign on their own connections to a database made for each test; their waits
between attempts are `Ticks`, which pass only when the test says, so nothing waits for time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import ClientSession

from bot.adapters.telegram import SECRET_HEADER, TelegramAdapter
from bot.config import Settings
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.leader import SoleProcess, while_leading
from bot.core.model import ChatRef, Incoming, Reply, SentRef
from bot.core.store import open_store
from bot.core.store.coordination import AdvisoryLockElection, ReloadChannel, announce_reload
from tests.clock import FakeClock
from tests.conftest import with_search_path
from tests.fakes.telegram_api import FakeTelegram, User, private_chat
from tests.test_app import bank_markdown
from tests.test_telegram import webhook_adapter

WAIT = 10.0  # failure guard: each step normally takes milliseconds
ALICE = User(1001, "Alice")


@pytest.fixture
async def dsn(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own for the test (not only a schema: advisory locks and the server's
    sessions are per database, and a test here terminates sessions), dropped afterwards."""
    admin = await asyncpg.connect(postgres_server, timeout=5)
    name = f"dq_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


class Ticks:
    """An elector's `sleep`: it returns only when the test calls `tick()`."""

    def __init__(self) -> None:
        self.asleep = 0
        self._tick = asyncio.Event()
        self._changed = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        tick = self._tick
        async with self._changed:
            self.asleep += 1
            self._changed.notify_all()
        try:
            await tick.wait()
        finally:
            self.asleep -= 1

    def tick(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def wait_asleep(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.asleep >= count), WAIT)


@asynccontextmanager
async def electors(dsn: str, count: int, ticks: Ticks) -> AsyncIterator[list[AdvisoryLockElection]]:
    elections = [AdvisoryLockElection(dsn, sleep=ticks.sleep) for _ in range(count)]
    tasks = [asyncio.create_task(election.run()) for election in elections]
    try:
        yield elections
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def first_leader(elections: list[AdvisoryLockElection]) -> AdvisoryLockElection:
    waits = {asyncio.ensure_future(e.wait_for(True)): e for e in elections}
    try:
        done, _ = await asyncio.wait(waits, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    assert done, "nobody was elected"
    return waits[done.pop()]


async def settled(
    ticks: Ticks, elections: list[AdvisoryLockElection], rounds: int = 3
) -> list[AdvisoryLockElection]:
    """Let every elector try `rounds` more times; the leaders then."""
    for _ in range(rounds):
        await ticks.wait_asleep(len(elections))
        ticks.tick()
    await ticks.wait_asleep(len(elections))
    return [e for e in elections if e.is_leader]


async def lock_holder_pid(dsn: str) -> int | None:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await connection.close()


async def terminate_the_leaders_session(dsn: str) -> None:
    """As an operator (or a server restart) would; returns once the server has ended it."""
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend($1, $2)", await lock_holder_pid(dsn), int(WAIT * 1000)
        )
    finally:
        await admin.close()


async def until_released_by(dsn: str, pid: int | None) -> None:
    """The server releases a closed session's lock a moment after the socket closes."""
    async with asyncio.timeout(WAIT):
        while await lock_holder_pid(dsn) == pid:
            pass  # each look is a round trip to the server


async def within(awaitable: Awaitable[None]) -> None:
    await asyncio.wait_for(awaitable, WAIT)


async def test_one_of_several_electors_leads_and_keeps_leading(dsn: str) -> None:
    ticks = Ticks()
    async with electors(dsn, 3, ticks) as elections:
        leader = await first_leader(elections)
        assert await settled(ticks, elections) == [leader]


async def test_a_follower_takes_over_when_the_leaders_connection_is_terminated(dsn: str) -> None:
    ticks = Ticks()
    async with electors(dsn, 3, ticks) as elections:
        leader = await first_leader(elections)
        await ticks.wait_asleep(3)
        await terminate_the_leaders_session(dsn)
        # No tick has passed: the leader stands down as soon as its connection is gone.
        await within(leader.wait_for(False))
        assert not any(e.is_leader for e in elections)

        [successor] = await settled(ticks, elections)
        assert successor is not leader
        assert await settled(ticks, elections) == [successor], "the old leader came back as a follower"


async def test_a_follower_takes_over_when_the_leader_stops(dsn: str) -> None:
    ticks = Ticks()
    elections = [AdvisoryLockElection(dsn, sleep=ticks.sleep) for _ in range(2)]
    tasks = [asyncio.create_task(election.run()) for election in elections]
    try:
        leader = await first_leader(elections)
        holder = await lock_holder_pid(dsn)
        tasks[elections.index(leader)].cancel()  # its connection is closed, the lock released
        await within(leader.wait_for(False))
        await until_released_by(dsn, holder)
        [successor] = await settled(ticks, [e for e in elections if e is not leader])
        assert successor is not leader
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_electors_on_other_databases_or_schemas_do_not_compete(dsn: str) -> None:
    ticks = Ticks()
    connection = await asyncpg.connect(dsn)
    await connection.execute("CREATE SCHEMA other")
    await connection.close()
    async with (
        electors(dsn, 1, ticks) as [public],
        electors(with_search_path(dsn, "other"), 1, ticks) as [other],
    ):
        await within(public.wait_for(True))
        await within(other.wait_for(True))


@asynccontextmanager
async def running(coroutine: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.ensure_future(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def recorder(events: list[str], word: str) -> Callable[[], Awaitable[None]]:
    async def record() -> None:
        events.append(word)

    return record


async def test_a_role_runs_only_while_leading_and_stops_with_the_process(dsn: str) -> None:
    ticks = Ticks()
    events: list[str] = []
    async with electors(dsn, 1, ticks) as [election]:
        async with running(while_leading(election, recorder(events, "start"), recorder(events, "stop"))):
            await within(election.wait_for(True))
            await ticks.wait_asleep(1)  # the heartbeat's wait: the role has started by now
            assert events == ["start"]

            await terminate_the_leaders_session(dsn)
            await within(election.wait_for(False))
            await ticks.wait_asleep(1)
            assert events == ["start", "stop"]

            ticks.tick()  # it reconnects and is elected again
            await within(election.wait_for(True))
            await ticks.wait_asleep(1)
            assert events == ["start", "stop", "start"]
        assert events == ["start", "stop", "start", "stop"]


async def test_sqlite_has_one_process_and_it_always_leads() -> None:
    events: list[str] = []
    started = asyncio.Event()

    async def start() -> None:
        events.append("start")
        started.set()

    async with running(while_leading(SoleProcess(), start, recorder(events, "stop"))) as task:
        await within(started.wait())
        assert not task.done()
    assert events == ["start", "stop"]


async def test_a_reload_reaches_every_listening_process(dsn: str) -> None:
    heard: list[str] = []
    arrived = asyncio.Condition()

    def channel(name: str) -> ReloadChannel:
        async def reload() -> None:
            async with arrived:
                heard.append(name)
                arrived.notify_all()

        return ReloadChannel(dsn, reload)

    async def heard_from(*names: str) -> None:
        async with arrived:
            await asyncio.wait_for(arrived.wait_for(lambda: sorted(heard) == sorted(names)), WAIT)

    first, second = channel("first"), channel("second")
    async with running(first.run()), running(second.run()):
        await within(first.listening.wait_for(True))
        await within(second.listening.wait_for(True))

        assert await announce_reload(dsn) == 2  # `dailyq reload`: both listen
        await heard_from("first", "second")

        heard.clear()
        await first.announce(except_this_process=True)  # /reload: the first has reloaded already
        await heard_from("second")
        assert heard == ["second"]


# ---- Telegram: one poller at a time, any number of webhook workers ----------------------------------


@dataclass
class Answering:
    """A core that answers /ping with the name of the process that got the update."""

    name: str

    async def handle(self, incoming: Incoming) -> list[Reply]:
        return [Reply(f"pong from {self.name}")]

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        raise AssertionError("no question is sent in this test")


async def pong(tg: FakeTelegram) -> str:
    tg.user_says(private_chat(ALICE), ALICE, "/ping")
    [answer] = await tg.wait_for("sendMessage", chat_id=ALICE.id, within=WAIT)
    return answer.text


async def test_only_the_leader_polls_telegram_until_another_process_leads(dsn: str) -> None:
    ticks = Ticks()
    async with FakeTelegram() as tg, electors(dsn, 2, ticks) as elections:
        adapters = [
            TelegramAdapter(tg.token, base_url=tg.base_url, poll_timeout=1, poll_while=election.polling)
            for election in elections
        ]
        names = {id(election): f"process {n}" for n, election in enumerate(elections)}
        runs = [adapter.run(Answering(names[id(e)])) for adapter, e in zip(adapters, elections, strict=True)]
        async with running(asyncio.gather(*runs)):
            leader = await first_leader(elections)
            assert await pong(tg) == f"pong from {names[id(leader)]}"

            await terminate_the_leaders_session(dsn)
            await within(leader.wait_for(False))
            # Nobody leads yet (it may be the database that is away): the old leader still answers.
            assert await pong(tg) == f"pong from {names[id(leader)]}"
            [successor] = await settled(ticks, elections, rounds=1)
            assert successor is not leader
            assert await pong(tg) == f"pong from {names[id(successor)]}"


async def test_webhook_workers_without_a_configured_secret_all_take_telegrams_deliveries() -> None:
    """Every process registers the webhook at its start; behind the operator's load balancer any of
    them may get Telegram's next delivery, carrying the secret the last one registered."""
    async with FakeTelegram() as tg:
        workers = [webhook_adapter(tg, secret=None) for _ in range(2)]
        cores = [Answering(f"worker {n}") for n in range(2)]
        runs = [adapter.run(core) for (adapter, _), core in zip(workers, cores, strict=True)]
        async with running(asyncio.gather(*runs)):
            registered = await tg.wait_for("setWebhook", count=2, after=0, within=WAIT)
            secret = registered[-1].params["secret_token"]
            update = tg.user_says(private_chat(ALICE), ALICE, "/ping")  # to the last one registered
            await tg.wait_for("sendMessage", chat_id=ALICE.id, within=WAIT)
            async with ClientSession() as http:
                for _, url in workers:  # as the balancer may route it
                    forwarded = update | {"update_id": update["update_id"] + 1}
                    async with http.post(url, json=forwarded, headers={SECRET_HEADER: secret}) as response:
                        assert response.status == 200
                        update = forwarded
            answers = await tg.wait_for("sendMessage", chat_id=ALICE.id, count=3, after=0, within=WAIT)
        assert sorted(answer.text for answer in answers[1:]) == ["pong from worker 0", "pong from worker 1"]


async def test_an_owners_reload_reaches_the_other_processes(dsn: str, tmp_path: Path) -> None:
    """/reload re-reads the bank where it was typed, and tells the others (not itself again)."""
    bank = tmp_path / "bank.md"
    bank.write_text(bank_markdown("First"), encoding="utf-8")
    settings = Settings(db=dsn, content=bank, owners=("telegram:1",))
    clock = FakeClock(datetime(2026, 3, 2, tzinfo=UTC))
    heard: list[str] = []
    other_reloaded = asyncio.Event()

    async def this_one_hears() -> None:
        heard.append("this process")

    async def the_other_hears() -> None:
        await other.reload_bank()
        other_reloaded.set()

    this_channel, other_channel = ReloadChannel(dsn, this_one_hears), ReloadChannel(dsn, the_other_hears)
    store = await open_store(dsn)
    try:
        this = Core(store, load(bank).bank, settings, clock, others_reload=this_channel.announce_to_others)
        other = Core(store, load(bank).bank, settings, clock)
        async with running(this_channel.run()), running(other_channel.run()):
            await within(this_channel.listening.wait_for(True))
            await within(other_channel.listening.wait_for(True))
            bank.write_text(bank_markdown("First", "Second"), encoding="utf-8")
            owner = Incoming("telegram", ChatRef("telegram", "1"), "1", "Owner", "/reload")
            [reply] = await this.handle(owner)
            assert "2 questions" in reply.text, reply.text
            await within(other_reloaded.wait())
        assert [len(core.bank) for core in (this, other)] == [2, 2]
        assert heard == [], "the process that reloaded is not asked again"
    finally:
        await store.close()


async def test_a_listener_whose_connection_ends_listens_again_and_hears_the_next_reload(dsn: str) -> None:
    ticks = Ticks()
    heard = asyncio.Event()

    async def reload() -> None:
        heard.set()

    channel = ReloadChannel(dsn, reload, sleep=ticks.sleep)
    async with running(channel.run()):
        await within(channel.listening.wait_for(True))
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'dailyq reload listener%' AND datname = current_database()"
            )
        finally:
            await admin.close()
        await within(channel.listening.wait_for(False))
        await ticks.wait_asleep(1)
        ticks.tick()  # the wait before it connects again
        await within(channel.listening.wait_for(True))
        assert await announce_reload(dsn) == 1
        await within(heard.wait())
