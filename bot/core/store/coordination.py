"""What several `dailyq run` processes on one PostgreSQL database coordinate through it: which
of them leads (bot.core.leader says what that means), and reloads that reach every one.

- The leader is the holder of a session-level advisory lock, taken on a connection of its own
  that never goes back to a pool (the lock belongs to the connection). Followers try to take it
  every `interval` seconds. When the leader dies, the server drops its connection and the lock
  with it, and the next follower's attempt wins.
- A leader whose connection is lost stops leading at once (asyncpg reports a connection the
  server ended); a leader that hears nothing from the server (a partition, a frozen process) fails
  its next heartbeat and stops leading too. The server, for its part, ends a session silent for
  `SILENCE_LIMIT` (idle_session_timeout), so a vanished leader cannot hold the lock for the hours
  TCP keepalive would take; that is longer than the leader's own heartbeat gives it, so the old
  leader has stood down before a new one can be elected.

The same kind of dedicated connection carries reloads: `ReloadChannel` LISTENs for a NOTIFY that
`dailyq reload`, SIGHUP or an owner's /reload sends, and every process re-reads its bank.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from bot.core.leader import Flag, FlagLeadership, Leadership, Sleep

log = logging.getLogger(__name__)

CHECK_INTERVAL = 5.0  # seconds between a follower's attempts, and between a leader's heartbeats
SILENCE_LIMIT = 20.0  # seconds the server keeps a silent control session (and its lock)
CONNECT_TIMEOUT = 10.0
RELOAD_CHANNEL = "dailyq_reload"
# One lock per database and schema: bots on different schemas of one database are different bots.
TRY_LOCK = (
    "SELECT pg_try_advisory_lock(hashtextextended('dailyq:leader:' || coalesce(current_schema(), ''), 0))"
)
# Errors that mean "the database is not there right now": reconnect after a wait.
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def _dedicated_connection(
    dsn: str,
    purpose: str,
    session: Callable[[asyncpg.Connection, asyncio.Event], Awaitable[None]],
    *,
    interval: float,
    sleep: Sleep,
) -> None:
    """Keep a connection of its own open for `session(connection, lost)`, reconnecting after a
    wait whenever it fails, until cancelled. `lost` is set when the server ends the connection.
    One log line when the database goes away and one when it is back, not one per attempt."""
    failing = False
    while True:
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(
                dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": f"dailyq {purpose}"}
            )
            lost = _lost_when_ended(connection)
            await connection.execute(f"SET idle_session_timeout = {int(SILENCE_LIMIT * 1000)}")
            if failing:
                log.info("%s: the database answers again", purpose)
                failing = False
            await session(connection, lost)
        except CONNECTION_ERRORS as error:
            if not failing:
                # The error's text never holds the password; the URL is not logged.
                log.warning(
                    "%s: lost the database (%s); trying again every %.0f s", purpose, _reason(error), interval
                )
                failing = True
        finally:
            if connection is not None:
                connection.terminate()  # no goodbye needed: the server drops the lock with the socket
        await sleep(interval)


def _lost_when_ended(connection: asyncpg.Connection) -> asyncio.Event:
    """An event set when the server ends the connection (asyncpg tells at once)."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    return lost


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


async def _heartbeats(
    connection: asyncpg.Connection, lost: asyncio.Event, interval: float, sleep: Sleep
) -> None:
    """Until the connection is lost: a `SELECT 1` every `interval` seconds, which must answer within
    `interval`. A server that stops answering (a partition, a half-open socket) is then noticed
    within two intervals, and the connection is never idle long enough for SILENCE_LIMIT."""
    while not await _until_lost(lost, sleep(interval)):
        await asyncio.wait_for(connection.fetchval("SELECT 1"), interval)


async def _until_lost(lost: asyncio.Event, wait: Awaitable[None]) -> bool:
    """Wait for `wait` or for the connection to be lost, whichever comes first; True if lost."""
    waiting = asyncio.ensure_future(wait)
    watching = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({waiting, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, watching):
            task.cancel()
    return lost.is_set()


class AdvisoryLockElection:
    """Leadership through a PostgreSQL advisory lock; `run()` campaigns until cancelled."""

    def __init__(self, dsn: str, *, interval: float = CHECK_INTERVAL, sleep: Sleep = asyncio.sleep) -> None:
        self._dsn = dsn
        self._interval = interval
        self._sleep = sleep
        self._leading = Flag()
        self._unchallenged = Flag()  # see `polling`

    @property
    def is_leader(self) -> bool:
        return self._leading.value

    @property
    def polling(self) -> Leadership:
        """Who takes the Telegram updates: the leader, and a leader that lost the database keeps
        on until it sees another process lead (its next attempt at the lock fails). Without the
        database nobody leads, yet commands must still be answered ("try again"); and a second
        poller only gets Telegram's 409 until then."""
        return FlagLeadership(self._unchallenged)

    async def wait_for(self, leading: bool) -> None:
        await self._leading.wait_for(leading)

    async def run(self) -> None:
        try:
            await _dedicated_connection(
                self._dsn, "leader election", self._campaign, interval=self._interval, sleep=self._sleep
            )
        finally:
            self._unchallenged.set(False)
            self._stand_down("this process stops")

    async def _campaign(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        try:
            while not await connection.fetchval(TRY_LOCK):
                self._unchallenged.set(False)  # another process leads
                if await _until_lost(lost, self._sleep(self._interval)):
                    return
            self._unchallenged.set(True)
            if self._leading.set(True):
                log.info("leader: this process now leads")
            # A server that stops answering is a lost lock as far as we can know.
            await _heartbeats(connection, lost, self._interval, self._sleep)
        finally:
            self._stand_down("its database connection was lost")

    def _stand_down(self, why: str) -> None:
        if self._leading.set(False):
            log.warning("leader: this process no longer leads: %s", why)


class ReloadChannel:
    """Reloads for every process on the database: `announce()` NOTIFYs, `run()` LISTENs and calls
    `on_reload()` for each announcement (except this process's own when it says so)."""

    def __init__(
        self,
        dsn: str,
        on_reload: Callable[[], Awaitable[object]],
        *,
        interval: float = CHECK_INTERVAL,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._dsn = dsn
        self._on_reload = on_reload
        self._interval = interval
        self._sleep = sleep
        self.origin = uuid.uuid4().hex  # this process, in the announcements it sends
        self.listening = Flag()
        self._reloads: set[asyncio.Task[object]] = set()  # the loop keeps only weak references

    async def run(self) -> None:
        await _dedicated_connection(
            self._dsn, "reload listener", self._listen, interval=self._interval, sleep=self._sleep
        )

    async def _listen(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        schema = await connection.fetchval("SELECT current_schema()")
        # So that `announce_reload` can count the processes of this bot (this schema) that listen.
        await connection.execute("SELECT set_config('application_name', $1, false)", _listener_name(schema))

        def heard(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                news = json.loads(payload)
            except ValueError:
                return
            if news.get("schema") != schema or news.get("skip") == self.origin:
                return
            task = asyncio.ensure_future(self._on_reload())
            self._reloads.add(task)
            task.add_done_callback(self._reloaded)

        await connection.add_listener(RELOAD_CHANNEL, heard)
        self.listening.set(True)
        try:
            # Without them an idle listener would be ended by the server (SILENCE_LIMIT), or
            # would not notice a server gone silent, and miss the reloads meanwhile.
            await _heartbeats(connection, lost, self._interval, self._sleep)
        finally:
            self.listening.set(False)

    def _reloaded(self, task: asyncio.Task[object]) -> None:
        self._reloads.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("reload failed; the bank is unchanged", exc_info=error)

    async def announce(self, *, except_this_process: bool = False) -> bool:
        """Ask every process on the database to re-read its bank (this one too, unless told not
        to); False, and a log line, when the database cannot be reached."""
        try:
            await announce_reload(self._dsn, skip=self.origin if except_this_process else None)
        except CONNECTION_ERRORS as error:
            log.error("reload: could not tell the other processes (%s)", _reason(error))
            return False
        return True

    async def announce_to_others(self) -> bool:
        """After this process reloaded (an owner's /reload): the others too."""
        return await self.announce(except_this_process=True)


def _listener_name(schema: str | None) -> str:
    return f"dailyq reload listener {schema or ''}"[:63]  # application_name's limit


async def announce_reload(dsn: str, *, skip: str | None = None) -> int:
    """NOTIFY every dailyq on the database (and schema) to reload; how many processes listen."""
    connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    try:
        schema = await connection.fetchval("SELECT current_schema()")
        payload = json.dumps({"schema": schema, "skip": skip})
        await connection.execute("SELECT pg_notify($1, $2)", RELOAD_CHANNEL, payload)
        return await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            _listener_name(schema),
        )
    finally:
        await connection.close()
