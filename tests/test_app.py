"""The process: `dailyq run` as an operator runs it (a subprocess against the fake Bot API on
127.0.0.1), and the wiring of bot.app in-process (reload, health, metrics, the supervisor)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from bot.app import (
    MeasuredAdapter,
    MeasuredCore,
    PlatformSupervisor,
    StartupError,
    app_health,
    platform_adapters,
    reload_bank,
    running,
)
from bot.config import Settings
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Reply, SentRef
from bot.core.ports import Core as CoreProtocol
from bot.core.ports import PlatformError
from bot.core.store import SQLiteStore
from bot.ops.backup import hold_instance_lock
from bot.ops.health import Metrics, serve
from tests.clock import FakeClock
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import BAD_GATEWAY, FakeTelegram, Fault, User, private_chat

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # failure guard for what a bot process does; each step normally takes well under a second
ALICE = User(1001, "Alice", language_code="en")
# Every subscribed chat's post is due at start-up: 00:00 UTC today, for chats subscribed yesterday.
DUE_AT_START = {"DAILYQ_POST_TIME": "00:00", "DAILYQ_TIMEZONE": "UTC"}


def bank_markdown(*titles: str) -> str:
    return "".join(
        f"### Q. {title}\n> **Tags**: [Demo]\n\nThe answer to {title}.\n<mark>{title}</mark>\n\n" for title in titles
    )


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    path = tmp_path / "bank.md"
    path.write_text(bank_markdown("First", "Second", "Third"), encoding="utf-8")
    return path


def bot_env(tmp_path: Path, bank: Path, **variables: str) -> dict[str, str]:
    """The environment of a bot process: this one's, minus any dailyq configuration, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILYQ_", "TELEGRAM_", "DISCORD_"))}
    return env | {
        "PYTHONPATH": str(ROOT),
        "DAILYQ_DB": str(tmp_path / "dailyq.sqlite3"),
        "DAILYQ_CONTENT": str(bank),
        "DAILYQ_LOG_LEVEL": "INFO",
    } | variables


def away_from_checkout(env: dict[str, str]) -> Path:
    """Where a bot process runs unless told: the test's folder (its database's), not the checkout,
    whose .env (a developer's own tokens) every command reads."""
    return Path(env["DAILYQ_DB"]).parent


class BotProcess:
    """`python -m bot <args>` with its output (log lines and prints) read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._line_arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], *args: str, cwd: Path | None = None) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, env=env, cwd=cwd or away_from_checkout(env),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace"))
            self._line_arrived.set()
        self._line_arrived.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def line_with(self, text: str, within: float = WAIT) -> str:
        """The first output line containing `text`, waiting for it."""
        seen = 0
        try:
            async with asyncio.timeout(within):
                while True:
                    for line in self.lines[seen:]:
                        if text in line:
                            return line
                    seen = len(self.lines)
                    if self._reader.done():
                        raise AssertionError(f"the bot exited before logging {text!r}:\n{self.output}")
                    self._line_arrived.clear()
                    await self._line_arrived.wait()
        except TimeoutError:
            raise AssertionError(f"no line with {text!r} within {within} s:\n{self.output}") from None

    async def exit_code(self, within: float = WAIT) -> int:
        try:
            async with asyncio.timeout(within):
                await self._reader
                return await self.process.wait()
        except TimeoutError:
            raise AssertionError(f"the bot did not exit within {within} s:\n{self.output}") from None

    async def stop(self, within: float = WAIT) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self.exit_code(within)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def bot_process(env: dict[str, str], *args: str, cwd: Path | None = None) -> AsyncIterator[BotProcess]:
    bot = await BotProcess.start(env, *args, cwd=cwd)
    try:
        yield bot
    finally:
        bot.kill()
        await bot.exit_code()


# ---- dailyq run, as a process --------------------------------------------------------------------


async def test_run_without_a_token_says_which_variables_to_set(tmp_path: Path, bank: Path) -> None:
    async with bot_process(bot_env(tmp_path, bank), "run") as bot:
        code = await bot.exit_code()
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in bot.output and "DISCORD_BOT_TOKEN" in bot.output
    assert "dailyq console" in bot.output
    assert "Traceback" not in bot.output


async def test_run_reads_dotenv_under_the_environment_and_logs_which_file(tmp_path: Path, bank: Path) -> None:
    async with FakeTelegram() as tg:
        (tmp_path / ".env").write_text(
            "# as .env.example has it\n"
            f"TELEGRAM_BOT_TOKEN={tg.token}\nTELEGRAM_API_URL={tg.base_url}\n"
            "DAILYQ_LOG_LEVEL=ERROR\n",  # the environment's INFO wins
            encoding="utf-8",
        )
        async with bot_process(bot_env(tmp_path, bank), "run", cwd=tmp_path) as bot:
            settings_line = await bot.line_with("settings: ")
            assert str((tmp_path / ".env").resolve()) in settings_line
            await bot.line_with("telegram: running as @dailyq_test_bot")
            tg.user_says(private_chat(ALICE), ALICE, "/start")
            [welcome] = await tg.wait_for("sendMessage", chat_id=ALICE.id, within=WAIT)
            assert welcome.status == 200
            assert await bot.stop() == 0, bot.output
    assert_token_not_in(bot.output, tg.token)


async def test_a_start_up_error_is_said_once(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("# Nothing here yet\n", encoding="utf-8")
    async with bot_process(bot_env(tmp_path, empty, TELEGRAM_BOT_TOKEN="1:x" + "y" * 34), "run") as bot:
        assert await bot.exit_code() == 2
    assert bot.output.count("no questions could be loaded") == 1, bot.output
    assert "no .env in" in bot.output


def test_a_platform_asked_for_without_its_token_is_named(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "dailyq.sqlite3", telegram_token="1:x")
    with pytest.raises(StartupError, match="--platform discord needs DISCORD_BOT_TOKEN"):
        platform_adapters(settings, ["telegram", "discord"])


async def subscribe_private_chats(settings: Settings, chat_ids: range, since: datetime) -> None:
    """Subscribe the chats through the real core, with the clock at `since`."""
    store = await SQLiteStore.open(settings.db)
    try:
        core = Core(store, load(settings.content).bank, settings, FakeClock(since))
        for chat_id in chat_ids:
            chat = ChatRef("telegram", str(chat_id))
            await core.handle(Incoming("telegram", chat, str(chat_id), "user", "/subscribe"))
    finally:
        await store.close()


def daily_posts(db: Path) -> list[tuple[str, str, str, str | None]]:
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute(
            "SELECT chat_key, local_date, status, message_id FROM posts WHERE kind = 'daily' ORDER BY chat_key"
        ).fetchall()


def assert_token_not_in(output: str, token: str) -> None:
    secret = token.split(":", 1)[1]  # the bot id before the colon is public
    assert secret not in output, "the token is in the log"


async def test_run_answers_reloads_holds_the_database_and_stops_on_sigterm(tmp_path: Path, bank: Path) -> None:
    due_chat = 4242
    settings = Settings.from_env(bot_env(tmp_path, bank, **DUE_AT_START))
    await subscribe_private_chats(settings, range(due_chat, due_chat + 1), datetime.now(UTC) - timedelta(days=1))

    async with FakeTelegram() as tg:
        # Error paths that put the token's URL in front of the logging: a failed send, a failed poll.
        tg.fail("sendMessage", Fault.error(500, "Internal Server Error"), chat_id=due_chat)
        tg.fail("getUpdates", BAD_GATEWAY)
        env = bot_env(
            tmp_path, bank, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.base_url,
            DAILYQ_LOG_LEVEL="DEBUG", **DUE_AT_START,
        )  # fmt: skip
        async with bot_process(env, "run") as bot:
            await bot.line_with("telegram: running as @dailyq_test_bot")
            tg.user_says(private_chat(ALICE), ALICE, "/start")
            [welcome] = await tg.wait_for("sendMessage", chat_id=ALICE.id, within=WAIT)
            assert welcome.status == 200 and "/quiz" in welcome.text
            # The daily post: refused once with a 500, then delivered on the scheduler's retry.
            failed, delivered = await tg.wait_for("sendMessage", chat_id=due_chat, count=2, after=0, within=WAIT)
            assert (failed.status, delivered.status) == (500, 200)

            async with bot_process(env, "run") as second:
                assert await second.exit_code() == 2
            assert "in use by a running dailyq" in second.output

            await asyncio.to_thread(bank.write_text, bank_markdown("First", "Second", "Third", "Fourth"))
            async with bot_process(env, "reload") as reload:
                assert await reload.exit_code() == 0, reload.output
            await bot.line_with("reload: now 4 questions")
            await asyncio.to_thread(bank.write_bytes, b"### Q. Broken\n\xff\xfe\n")
            async with bot_process(env, "reload") as broken_reload:
                assert await broken_reload.exit_code() == 0, broken_reload.output
            await bot.line_with("reload: kept the previous bank")

            assert await bot.stop(within=10) == 0, bot.output

    assert [status for _, _, status, _ in daily_posts(settings.db)] == ["sent"]
    for process in (bot, second, reload, broken_reload):
        assert_token_not_in(process.output, tg.token)


async def test_a_refused_token_is_one_clear_line_retried_until_sigterm(tmp_path: Path, bank: Path) -> None:
    async with FakeTelegram() as tg:
        tg.fail("getMe", Fault.error(401, "Unauthorized"), times=None)
        env = bot_env(
            tmp_path, bank, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.base_url, DAILYQ_LOG_LEVEL="DEBUG"
        )
        async with bot_process(env, "run") as bot:
            refused = await bot.line_with("refused TELEGRAM_BOT_TOKEN")
            assert "trying again in 5 s" in refused
            assert await bot.stop(within=10) == 0, bot.output  # also while waiting to try again
    assert "Traceback" not in bot.output, bot.output
    assert_token_not_in(bot.output, tg.token)


async def test_the_console_reloads_on_sighup_and_quits_quietly_on_ctrl_c(tmp_path: Path, bank: Path) -> None:
    env = bot_env(tmp_path, bank)
    async with bot_process(env, "console") as console:
        assert console.process.stdin is not None
        console.process.stdin.write(b"/start\n")
        await console.line_with("/quiz")  # the welcome
        # `dailyq reload` finds the console by the database lock it holds; SIGHUP must not end it.
        await asyncio.to_thread(bank.write_bytes, b"### Q. Broken\n\xff\xfe\n")
        async with bot_process(env, "reload") as reload:
            assert await reload.exit_code() == 0, reload.output
        await console.line_with("reload: kept the previous bank")
        console.process.send_signal(signal.SIGINT)
        assert await console.exit_code() == 130
    assert "Traceback" not in console.output, console.output


class HeldTelegram(FakeTelegram):
    """Holds every sendMessage until `release()`: a fan-out can be caught with sends in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def _api_sendmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        await self._gate.wait()
        return await super()._api_sendmessage(params, files)


async def test_sigterm_during_a_fan_out_exits_0_and_loses_no_post(tmp_path: Path, bank: Path) -> None:
    chats = range(3000, 3040)
    settings = Settings.from_env(bot_env(tmp_path, bank, **DUE_AT_START))
    now = datetime.now(UTC)
    await subscribe_private_chats(settings, chats, now - timedelta(days=1))

    async with HeldTelegram() as tg:
        env = bot_env(tmp_path, bank, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.base_url, **DUE_AT_START)
        async with bot_process(env, "run") as bot:
            await tg.wait_until(lambda: len(tg.calls_to("sendMessage")) >= 10, WAIT)
            bot.process.send_signal(signal.SIGTERM)
            await bot.line_with("SIGTERM: shutting down")
            tg.release()
            assert await bot.exit_code() == 0, bot.output
            # Every send in flight was delivered at its first attempt: the platform was not
            # closed under it (the scheduler logs any failed or retried send).
            assert "bot.core.scheduler" not in bot.output, bot.output

        # A restart sweeps again and finds nothing left to send.
        debug = env | {"DAILYQ_LOG_LEVEL": "DEBUG"}
        async with bot_process(debug, "run") as restarted:
            await restarted.line_with("executed successfully")  # APScheduler: the start-up sweep is done
            assert await restarted.stop() == 0, restarted.output

    today = now.date().isoformat()
    posts = daily_posts(settings.db)
    assert [key for key, *_ in posts] == sorted(f"telegram:{chat}" for chat in chats)
    assert all(day == today and status == "sent" and message for _, day, status, message in posts), posts
    delivered = [call.chat_id for call in tg.calls_to("sendMessage") if call.status == 200]
    assert sorted(delivered) == list(chats)


async def test_a_second_sigterm_exits_at_once(tmp_path: Path, bank: Path) -> None:
    settings = Settings.from_env(bot_env(tmp_path, bank, **DUE_AT_START))
    await subscribe_private_chats(settings, range(5000, 5001), datetime.now(UTC) - timedelta(days=1))

    async with HeldTelegram() as tg:
        env = bot_env(tmp_path, bank, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.base_url, **DUE_AT_START)
        async with bot_process(env, "run") as bot:
            await tg.wait_until(lambda: bool(tg.calls_to("sendMessage")), WAIT)  # held: not answered
            bot.process.send_signal(signal.SIGTERM)
            await bot.line_with("SIGTERM: shutting down")  # now waiting for the held send
            bot.process.send_signal(signal.SIGTERM)
            assert await bot.exit_code(within=5) == 1, bot.output


# ---- backup and restore from the command line ------------------------------------------------------


def dailyq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=away_from_checkout(env), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def chat_keys(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as connection:
        return [key for (key,) in connection.execute("SELECT key FROM chats ORDER BY key")]


async def test_backup_and_restore_from_the_command_line(tmp_path: Path, bank: Path) -> None:
    env = bot_env(tmp_path, bank)
    settings = Settings.from_env(env)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    await subscribe_private_chats(settings, range(1, 3), yesterday)

    made = dailyq(env, "backup", f"{tmp_path / 'backups'}/")
    assert made.returncode == 0, made.stderr
    [copy] = (tmp_path / "backups").iterdir()
    assert made.stdout.strip() == f"dailyq backup: wrote {copy}"
    with closing(sqlite3.connect(copy)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert chat_keys(copy) == ["telegram:1", "telegram:2"]

    await subscribe_private_chats(settings, range(3, 4), yesterday)
    with hold_instance_lock(settings.db):  # as a running bot does
        refused = dailyq(env, "restore", str(copy))
    assert refused.returncode == 1 and "in use by a running dailyq" in refused.stderr
    assert chat_keys(settings.db) == ["telegram:1", "telegram:2", "telegram:3"]

    restored = dailyq(env, "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    assert "the replaced database was kept as" in restored.stdout
    assert chat_keys(settings.db) == ["telegram:1", "telegram:2"]


# ---- the wiring, in-process ---------------------------------------------------------------------------


def question_titles(core: Core) -> list[str]:
    return [question.title for question in core.bank.questions]


async def test_a_reload_with_a_broken_file_keeps_the_old_bank(tmp_path: Path) -> None:
    content = tmp_path / "banks"
    content.mkdir()
    (content / "a.md").write_text(bank_markdown("First", "Second"), encoding="utf-8")
    (content / "b.md").write_text(bank_markdown("Third"), encoding="utf-8")
    settings = Settings(db=tmp_path / "dailyq.sqlite3", content=content)
    store = await SQLiteStore.open(settings.db)
    try:
        core = Core(store, load(content).bank, settings, FakeClock(datetime(2026, 3, 2, tzinfo=UTC)))

        (content / "b.md").write_bytes(bank_markdown("Third", "Fourth").encode() + b"\xff\xfe")
        broken = await reload_bank(core)
        assert [problem.file for problem in broken.errors] == ["b.md"]
        assert question_titles(core) == ["First", "Second", "Third"]

        (content / "b.md").write_text(bank_markdown("Third", "Fourth"), encoding="utf-8")
        fixed = await reload_bank(core)
        assert fixed.errors == ()
        assert question_titles(core) == ["First", "Second", "Third", "Fourth"]
    finally:
        await store.close()


@dataclass
class RecordingAdapter:
    """A platform that is up until cancelled and records what the scheduler sends."""

    platform: str = "console"
    sent: list[Reply] = field(default_factory=list)
    up: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, core: CoreProtocol) -> None:
        self.up.set()
        await asyncio.Event().wait()

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        self.sent.append(reply)
        return SentRef(chat, str(len(self.sent)))


async def test_healthz_and_metrics_follow_the_running_parts(tmp_path: Path, bank: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    settings = Settings(db=tmp_path / "dailyq.sqlite3", content=bank, post_time="09:00")
    metrics = Metrics()
    console = RecordingAdapter()
    async with running(settings, {"console": MeasuredAdapter(console, metrics)}, clock) as app:
        core = MeasuredCore(app.core, metrics)
        supervisor = PlatformSupervisor(console, core)
        platform = asyncio.create_task(supervisor.run())
        http = await serve(app_health(app, {"console": supervisor}), metrics, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{http.addresses[0][1]}") as session:

                async def get(path: str) -> tuple[int, str]:
                    async with session.get(path) as response:
                        return response.status, await response.text()

                await console.up.wait()
                for text in ("/subscribe", "/nonsense"):
                    await core.handle(Incoming("console", ChatRef("console", "c"), "u", "u", text))
                status, body = await get("/healthz")
                assert status == 200, body

                clock.advance(timedelta(hours=1, minutes=1))
                # In a task of its own, as APScheduler runs it: Scheduler.shutdown waits for the
                # task that last swept, and that must not be this one.
                await asyncio.create_task(app.scheduler.sweep())
                assert [reply.kind for reply in console.sent] == ["question"]
                _, exposition = await get("/metrics")
                assert 'dailyq_posts_sent_total{platform="console"} 1.0' in exposition
                assert 'dailyq_commands_total{command="subscribe"} 1.0' in exposition
                assert 'dailyq_commands_total{command="unknown"} 1.0' in exposition
                assert "nonsense" not in exposition  # a label per typed word would grow without end

                await app.scheduler.shutdown()
                status, body = await get("/healthz")
                assert status == 503 and json.loads(body)["failing"] == ["scheduler"]
        finally:
            platform.cancel()
            await http.cleanup()


@dataclass
class FlakyAdapter:
    """Refused `refusals` times (as a wrong token is), then up until cancelled."""

    platform: str
    refusals: int
    attempts: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, core: CoreProtocol) -> None:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise PlatformError(f"{self.platform}: the Bot API refused TELEGRAM_BOT_TOKEN")
        self.up.set()
        await asyncio.Event().wait()

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        raise AssertionError("nothing is sent in this test")


async def test_a_refused_platform_is_retried_with_growing_waits_and_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    refused, healthy = FlakyAdapter("telegram", refusals=8), FlakyAdapter("discord", refusals=0)
    unused = cast(CoreProtocol, None)  # these adapters never reach the core
    supervisors = [PlatformSupervisor(adapter, unused, sleep=no_wait) for adapter in (refused, healthy)]
    tasks = [asyncio.create_task(supervisor.run()) for supervisor in supervisors]
    try:
        async with asyncio.timeout(WAIT):
            await refused.up.wait()
            await healthy.up.wait()
        assert waits == [5, 10, 20, 40, 80, 160, 300, 300]
        assert all(supervisor.connected for supervisor in supervisors)
        assert healthy.attempts == 1 and not tasks[1].done()
    finally:
        for task in tasks:
            task.cancel()
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(failures) == 8 and all(record.exc_info is None for record in failures)
    assert failures[0].getMessage() == "telegram: the Bot API refused TELEGRAM_BOT_TOKEN; trying again in 5 s"


async def test_run_with_a_discord_token_serves_slash_commands_until_sigterm(tmp_path: Path, bank: Path) -> None:
    discord = await FakeDiscord(heartbeat_interval_ms=1000).start()
    try:
        env = bot_env(
            tmp_path, bank, DISCORD_BOT_TOKEN="fake-discord-token", DISCORD_API_URL=discord.api_url,
            DISCORD_GATEWAY_URL=discord.gateway_url, DISCORD_GUILD_IDS=str(discord.guild_id),
        )  # fmt: skip
        async with bot_process(env, "run", "--platform", "discord") as bot:
            await discord.wait_connected()
            [sync] = await discord.wait_for_call("PUT", rf"/applications/\d+/guilds/{discord.guild_id}/commands")
            assert "quiz" in {command["name"] for command in sync.body}
            tags = await discord.slash(discord.member, "tags")
            [answer] = await discord.wait_until(lambda: discord.replies_to(tags))
            assert "in 3 questions" in answer["content"], answer
            assert await bot.stop(within=10) == 0, bot.output
        assert "fake-discord-token" not in bot.output
        # Start-up chatter of the libraries stays below INFO: dailyq uses no voice, and the
        # scheduler's job bookkeeping is no news.
        for chatter in ("voice will NOT be supported", "Adding job tentatively", "Added job"):
            assert chatter not in bot.output, bot.output
    finally:
        await discord.close()
