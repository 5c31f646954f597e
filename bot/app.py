"""The process: one bank, one database, one core and one scheduler, shared by the chosen adapters."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import ENV_FILE, Settings, is_database_url, shown_database
from bot.core.bank import LoadResult, load
from bot.core.clock import Clock, SystemClock
from bot.core.commands import Core as QuizCore
from bot.core.commands import commands_with
from bot.core.commands.inbound import platform_language, split_command
from bot.core.leader import Leadership, SoleProcess, while_leading
from bot.core.messages import LANGUAGES
from bot.core.model import ChatRef, Incoming, Reply, SentRef
from bot.core.ports import Adapter, ChatGone, ChatMoved, Core, PlatformError, TransientError
from bot.core.scheduler import Scheduler
from bot.core.store import DatabaseUnavailable, PostgreSQLStore, Store, open_store
from bot.core.store.coordination import (
    CONNECTION_ERRORS,
    AdvisoryLockElection,
    ReloadChannel,
    announce_reload,
)
from bot.core.timing import parse_duration
from bot.feedback import available as feedback_available
from bot.feedback import reviewer_from
from bot.ops.backup import BackupError, DatabaseInUse, hold_instance_lock
from bot.ops.health import Health, Metrics, database_check, serve
from bot.ops.logs import secrets_from, setup_logging

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry

log = logging.getLogger("dailyq")

NO_TOKEN = (
    "dailyq run: no platform to run. Set TELEGRAM_BOT_TOKEN (a bot from @BotFather) and/or "
    "DISCORD_BOT_TOKEN (a Discord application's bot token) in the environment or in .env.\n"
    "To try the bot without any token: dailyq console"
)
# Seconds the platforms get to finish answering and disconnect after SIGTERM. The scheduler's
# own drain (bot.core.scheduler.SHUTDOWN_WAIT) comes before it; Docker waits 30 s in all.
SHUTDOWN_LIMIT = 10.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RESTART_BACKOFF = (5.0, 300.0)  # first and longest wait before a platform is tried again


class StartupError(Exception):
    """Something the user must fix before the bot can start; the message says what."""


def catch_up_grace(settings: Settings) -> timedelta | None:
    if settings.catch_up is None:
        return None
    try:
        return parse_duration(settings.catch_up)
    except ValueError as error:
        raise StartupError(f"DAILYQ_CATCH_UP: {error}") from None


def log_problems(loaded: LoadResult, content: Path) -> None:
    for problem in loaded.errors:
        log.error("bank: %s", problem)
    log.info("bank: %d questions, %d warnings from %s", len(loaded.bank), len(loaded.warnings), content)


async def reload_bank(core: QuizCore) -> LoadResult:
    """SIGHUP or `dailyq reload`: re-parse; the core keeps the last good bank when this one is broken."""
    loaded = await core.reload_bank()
    log_problems(loaded, core.settings.content)
    if core.bank is loaded.bank:
        log.info("reload: now %d questions", len(loaded.bank))
    else:
        log.error("reload: kept the previous bank (%d errors, %d questions)", len(loaded.errors), len(loaded.bank))
    return loaded


def leadership_for(settings: Settings) -> Leadership:
    """Who runs the scheduler (and the Telegram poller): on SQLite this process, the only one the
    instance lock lets in; on PostgreSQL whichever process holds the database's advisory lock."""
    if is_database_url(settings.db):
        return AdvisoryLockElection(str(settings.db))
    return SoleProcess()


@dataclass
class Running:
    store: Store
    core: QuizCore
    scheduler: Scheduler
    leadership: Leadership = field(default_factory=SoleProcess)
    reloads: ReloadChannel | None = None  # PostgreSQL: reloads reach every process on the database


@asynccontextmanager
async def running(
    settings: Settings,
    adapters: dict[str, Adapter],
    clock: Clock | None = None,
    leadership: Leadership | None = None,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Running]:
    """Open the bank and the database, run the scheduler while this process leads; undo it all on
    the way out.

    With a model configured (and the `feedback` extra installed) the core gets a reviewer, whose
    metrics go to `registry`.
    """
    clock = clock or SystemClock()
    leadership = leadership or leadership_for(settings)
    grace = catch_up_grace(settings)
    loaded = load(settings.content)
    log_problems(loaded, settings.content)
    if not loaded.bank.questions:
        raise StartupError(f"no questions could be loaded from {settings.content}; see: dailyq check")
    try:
        store = await open_store(settings.db, pool_size=settings.db_pool_size)
    except (sqlite3.Error, OSError, DatabaseUnavailable) as error:
        raise StartupError(f"cannot open the database {shown_database(settings.db)}: {error}") from None
    reviewer = reviewer_from(settings, registry)
    try:
        reloads = None
        if is_database_url(settings.db):
            reloads = ReloadChannel(str(settings.db), lambda: reload_bank(core))
        core = QuizCore(
            store,
            loaded.bank,
            settings,
            clock,
            reviewer=reviewer,
            others_reload=reloads.announce_to_others if reloads else None,
        )
        scheduler = Scheduler(store, core, adapters, clock, grace=grace)
        roles = [
            asyncio.create_task(leadership.run(), name="leader election"),
            asyncio.create_task(while_leading(leadership, scheduler.lead, scheduler.stand_down), name="scheduler"),
        ]
        if reloads is not None:
            roles.append(asyncio.create_task(reloads.run(), name="reload listener"))
        try:
            yield Running(store, core, scheduler, leadership, reloads)
        finally:
            await scheduler.shutdown()
            for role in roles:
                role.cancel()
            await asyncio.gather(*roles, return_exceptions=True)
    finally:
        if reviewer is not None:
            await reviewer.close()
        await store.close()


def instance_lock(db: Path | str) -> AbstractContextManager[None]:
    """One bot per SQLite file (its instance lock); on PostgreSQL any number share the database."""
    return nullcontext() if is_database_url(db) else hold_instance_lock(db)


async def run_console(
    settings: Settings, *, users: list[str], admins: list[str], chat: str, group: bool, echo: bool = False
) -> int:
    from bot.adapters.console import ConsoleAdapter

    lang = platform_language(settings.lang) or LANGUAGES[0]
    adapter = ConsoleAdapter(
        sys.stdin, sys.stdout, users=users, admins=admins, chat=chat, group=group, echo=echo, lang=lang
    )
    try:
        with instance_lock(settings.db):
            async with running(settings, {adapter.platform: adapter}) as app:
                # The console holds the database's lock too, so `dailyq reload` signals it.
                with reloading_on_sighup(app):
                    await adapter.run(app.core)
    except DatabaseInUse as in_use:
        print(console_refusal(settings.db, in_use.pid), file=sys.stderr)
        return 2
    except (StartupError, BackupError) as error:
        print(f"dailyq: {error}", file=sys.stderr)
        return 2
    return 0


def console_refusal(db: Path, pid: int | None) -> str:
    """Why a second console cannot open the database, and the two ways to go on."""
    return (
        f"dailyq: {db} is in use by another dailyq (pid {pid or 'unknown'}): a console or a bot runs "
        "on it. One console can play a whole group: dailyq console --group --users ann,bob,carol; "
        "or give this console its own database: dailyq console --db another.sqlite3"
    )


@contextmanager
def reloading_on_sighup(app: Running) -> Iterator[None]:
    """While inside, SIGHUP (what `dailyq reload` sends on SQLite) re-reads the bank; on PostgreSQL
    it asks every process on the database to, this one included."""
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[object]] = set()  # the loop keeps only weak references to tasks

    def finished(task: asyncio.Task[object]) -> None:
        reloads.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("reload failed; the bank is unchanged", exc_info=error)

    async def reload_everywhere(channel: ReloadChannel) -> None:
        if not await channel.announce():  # this process hears its own announcement too
            await reload_bank(app.core)

    def on_hangup() -> None:
        work = reload_bank(app.core) if app.reloads is None else reload_everywhere(app.reloads)
        task: asyncio.Task[object] = loop.create_task(work)
        reloads.add(task)
        task.add_done_callback(finished)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


# ---- dailyq run -----------------------------------------------------------------------------------

TOKEN_VARIABLES = {"telegram": "TELEGRAM_BOT_TOKEN", "discord": "DISCORD_BOT_TOKEN"}


def platform_adapters(
    settings: Settings, wanted: list[str] | None, leadership: Leadership | None = None
) -> dict[str, Adapter]:
    """An adapter for every platform whose token is set (and that --platform names, if given).
    Telegram polls only while this process leads (`leadership`; see AdvisoryLockElection.polling):
    Telegram takes one poller."""
    tokens = {"telegram": settings.telegram_token, "discord": settings.discord_token}
    for name in wanted or ():
        if not tokens[name]:
            raise StartupError(f"--platform {name} needs {TOKEN_VARIABLES[name]}, which is not set")
    adapters: dict[str, Adapter] = {}
    commands = commands_with(feedback=feedback_available(settings))  # their menus: the core's commands
    if settings.telegram_token and (not wanted or "telegram" in wanted):
        from bot.adapters.telegram import TelegramAdapter

        adapters["telegram"] = TelegramAdapter(
            settings.telegram_token,
            base_url=settings.telegram_api_url,
            webhook_url=settings.telegram_webhook_url,
            webhook_listen=settings.telegram_webhook_listen,
            webhook_secret=settings.telegram_webhook_secret,
            commands=commands,
            poll_while=leadership.polling if isinstance(leadership, AdvisoryLockElection) else leadership,
        )
    if settings.discord_token and (not wanted or "discord" in wanted):
        from bot.adapters.discord import DiscordAdapter, Shards

        adapters["discord"] = DiscordAdapter(
            settings.discord_token,
            api_url=settings.discord_api_url,
            gateway_url=settings.discord_gateway_url,
            guild_ids=settings.discord_guild_ids,
            message_content=settings.discord_message_content,
            commands=commands,
            shards=Shards(settings.discord_shard_count, settings.discord_shard_ids),
        )
    return adapters


@dataclass
class MeasuredAdapter:
    """Counts and times what the scheduler sends through a platform, for /metrics."""

    inner: Adapter
    metrics: Metrics

    @property
    def platform(self) -> str:
        return self.inner.platform

    async def run(self, core: Core) -> None:
        await self.inner.run(core)

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        started = time.perf_counter()
        try:
            ref = await self.inner.send(chat, reply)
        except PlatformError as error:
            kind = {ChatGone: "gone", ChatMoved: "moved", TransientError: "transient"}.get(type(error), "platform")
            self.metrics.errors.labels(kind=kind).inc()
            raise
        self.metrics.send_seconds.labels(platform=self.platform).observe(time.perf_counter() - started)
        if reply.kind == "question":
            self.metrics.posts_sent.labels(platform=self.platform).inc()
        return ref


@dataclass
class MeasuredCore:
    """What adapters call: counts commands and answers for /metrics, then asks the real core."""

    inner: QuizCore
    metrics: Metrics

    async def handle(self, incoming: Incoming) -> list[Reply]:
        text = incoming.text.strip()
        if text.startswith("/"):
            name = split_command(text)[0]
            # Only the command table's names: anyone can type /anything, and every label is a series.
            command = name if name in self.inner.commands_by_name else "unknown"
        else:
            command = "text"
        self.metrics.commands.labels(command=command).inc()
        if command in ("answer", "text"):
            self.metrics.answers.labels(platform=incoming.platform).inc()
        try:
            return await self.inner.handle(incoming)
        except Exception:
            self.metrics.errors.labels(kind="handler").inc()
            raise

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        if reply.kind == "question":
            self.metrics.posts_sent.labels(platform=ref.chat.platform).inc()
        await self.inner.sent(reply, ref)


@dataclass
class PlatformSupervisor:
    """Keeps one platform running: a refused token or an unreachable API is logged in one line and
    tried again with a growing wait, never a stack trace loop and never a stop of the others."""

    adapter: Adapter
    core: Core
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    connected: bool = field(default=False, init=False)

    async def run(self) -> None:
        """Run the adapter until cancelled; whenever it stops, start it again after a wait."""
        name = self.adapter.platform
        wait = RESTART_BACKOFF[0]
        while True:
            failure: BaseException | None = None  # an unforeseen one, logged with its traceback
            self.connected = True
            started = time.monotonic()
            try:
                await self.adapter.run(self.core)
                problem = f"{name}: stopped taking input"
            except PlatformError as error:
                problem = str(error) if str(error).startswith(f"{name}:") else f"{name}: {error}"
            except Exception as error:  # a bug or an unforeseen library error: keep the others going
                problem, failure = f"{name} stopped unexpectedly ({error!r})", error
            finally:
                self.connected = False
            if time.monotonic() - started > RESTART_BACKOFF[1]:
                wait = RESTART_BACKOFF[0]  # it ran for a while: this is a new failure, not the same one
            log.error("%s; trying again in %.0f s", problem, wait, exc_info=failure)
            await self.sleep(wait)
            wait = min(wait * 2, RESTART_BACKOFF[1])


async def run_platforms(settings: Settings, platforms: list[str] | None = None) -> int:
    try:
        setup_logging(settings.log_level, settings.log_format, secrets_from(settings))
    except ValueError as error:
        print(f"dailyq: {error}", file=sys.stderr)
        return 2
    if settings.env_file:
        log.info("settings: from the environment and %s (the environment wins)", settings.env_file)
    else:
        log.info("settings: from the environment (no %s in %s)", ENV_FILE, Path.cwd())
    try:
        leadership = leadership_for(settings)
        adapters = platform_adapters(settings, platforms, leadership)
        if not adapters:
            print(NO_TOKEN, file=sys.stderr)
            return 2
        metrics = Metrics()
        measured = {name: MeasuredAdapter(adapter, metrics) for name, adapter in adapters.items()}
        with instance_lock(settings.db):
            async with running(settings, dict(measured), leadership=leadership, registry=metrics.registry) as app:
                return await _serve(settings, app, adapters, metrics)
    except (StartupError, BackupError) as error:
        log.critical("cannot start: %s", error)  # the log is on stderr: said once, at every level
        return 2


async def _serve(settings: Settings, app: Running, adapters: dict[str, Adapter], metrics: Metrics) -> int:
    core = MeasuredCore(app.core, metrics)
    if isinstance(app.store, PostgreSQLStore):
        metrics.watch_pool(app.store.pool_figures)
    supervisors = {name: PlatformSupervisor(adapter, core) for name, adapter in adapters.items()}
    metrics.scheduler_leader.set_function(lambda: int(app.leadership.is_leader))
    http = await _serve_http(settings.http_port, app_health(app, supervisors), metrics)
    stop = asyncio.Event()
    try:
        with stopping_on_signals(stop), reloading_on_sighup(app):
            tasks = [asyncio.create_task(s.run(), name=f"platform:{n}") for n, s in supervisors.items()]
            try:
                await stop.wait()
                # The daily posts in flight go out first, while the platforms can still deliver
                # them; only then does input stop and do the platforms disconnect.
                await app.scheduler.shutdown()
            finally:
                await _stop_platforms(tasks)
    finally:
        if http:
            await http.cleanup()
    return 0


@contextmanager
def stopping_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, SIGTERM or SIGINT sets `stop`; a second one exits at once."""
    loop = asyncio.get_running_loop()

    def on_stop_signal(number: int) -> None:
        if stop.is_set():  # a second signal: the user wants out now
            log.warning("second %s: exiting at once", signal.Signals(number).name)
            os._exit(1)
        log.info("%s: shutting down", signal.Signals(number).name)
        stop.set()

    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, on_stop_signal, number)
    try:
        yield
    finally:
        for number in STOP_SIGNALS:
            loop.remove_signal_handler(number)


async def _stop_platforms(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_LIMIT)
        for task in late:
            log.warning("%s did not stop within %.0f s", task.get_name(), SHUTDOWN_LIMIT)


async def _serve_http(port: int | None, health: Health, metrics: Metrics) -> web.AppRunner | None:
    if not port:
        return None
    try:
        return await serve(health, metrics, "0.0.0.0", port)
    except OSError as error:
        raise StartupError(f"DAILYQ_HTTP_PORT={port}: cannot listen ({error.strerror or error})") from None


def app_health(app: Running, supervisors: dict[str, PlatformSupervisor]) -> Health:
    """What /healthz asks: the database answers, the scheduler sweeps (if this process leads),
    every platform runs; and which database it is, and whether this process leads."""
    health = Health()
    health.add_fact("database", lambda: app.store.backend)
    health.add_check("db", database_check(app.store))
    health.add_check("scheduler", _scheduler_check(app.scheduler, app.leadership))
    health.add_fact("leader", lambda: app.leadership.is_leader)
    for name, supervisor in supervisors.items():
        health.add_check(f"platform:{name}", _connected_check(supervisor))
    return health


def _scheduler_check(scheduler: Scheduler, leadership: Leadership) -> Callable[[], Awaitable[bool]]:
    async def scheduler_alive() -> bool:
        return scheduler.running or not leadership.is_leader  # a follower's scheduler waits its turn

    return scheduler_alive


def _connected_check(supervisor: PlatformSupervisor) -> Callable[[], Awaitable[bool]]:
    async def platform_connected() -> bool:
        return supervisor.connected

    return platform_connected


def signal_reload(settings: Settings) -> int:
    """`dailyq reload`: ask the running bot on this database to re-read its bank (SIGHUP; on
    PostgreSQL a NOTIFY that every process on the database hears)."""
    if is_database_url(settings.db):
        return _notify_reload(str(settings.db))
    try:
        with hold_instance_lock(settings.db):
            print(f"dailyq reload: no dailyq is running on {settings.db}", file=sys.stderr)
            return 1
    except DatabaseInUse as running_bot:
        pid = running_bot.pid
    try:
        if pid is None:
            raise OSError("its lock file names no process")
        os.kill(pid, signal.SIGHUP)
    except OSError as error:
        print(f"dailyq reload: could not signal pid {pid}: {error}", file=sys.stderr)
        return 1
    # The bot re-reads its own DAILYQ_CONTENT, which may differ from this command's.
    print(f"dailyq reload: asked pid {pid} to re-read its bank; its log says how that went")
    return 0


def _notify_reload(url: str) -> int:
    try:
        listening = asyncio.run(announce_reload(url))
    except CONNECTION_ERRORS as error:
        print(f"dailyq reload: cannot reach {shown_database(url)}: {error}", file=sys.stderr)
        return 1
    if not listening:
        print(f"dailyq reload: no dailyq is running on {shown_database(url)}", file=sys.stderr)
        return 1
    print(
        f"dailyq reload: asked {listening} process(es) on {shown_database(url)} to re-read their banks;"
        " their logs say how that went"
    )
    return 0
