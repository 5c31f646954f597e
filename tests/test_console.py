"""The console chat: lines in, plain text out, numbered buttons, the real core on a real SQLite file."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from bot.adapters.console import PROMPT, ConsoleAdapter
from bot.config import Settings
from bot.core import render
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.messages import count_of, t
from bot.core.model import Button, ChatRef, Incoming, Reply, SentRef
from bot.core.render import escape
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, Store
from tests.clock import FakeClock
from tests.transcript import Transcript

ROOT = Path(__file__).resolve().parent.parent
BANK = """\
# Attention

### Q. What do Q, K and V stand for?
> **Company**: Acme ｜ **Round**: 一面 ｜ **Tags**: [Attention, Transformer]

**Query**, **Key** and *Value*: the query asks, keys match, values answer.

| part | 含义 |
|---|---|
| Q | 查询 |
| K | 键 |

<mark>Q asks, K matches, V answers.</mark>
"""
TITLE = "What do Q, K and V stand for?"


@pytest.fixture
def bank_file(tmp_path: Path) -> Path:
    path = tmp_path / "bank.md"
    path.write_text(BANK, encoding="utf-8")
    return path


@pytest.fixture
async def store(tmp_path: Path):
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    yield store
    await store.close()


@pytest.fixture
def core(store: Store, bank_file: Path) -> Core:
    loaded = load(bank_file)
    assert not loaded.errors and len(loaded.bank.questions) == 1
    return Core(
        store, loaded.bank, Settings(lang="en"), FakeClock(datetime(2026, 3, 2, 8, tzinfo=UTC)), fuzz=False
    )


async def chat(core: object, lines: str, **options: object) -> str:
    """Everything the console prints for `lines` typed by one user; returns when input ends."""
    stdout = io.StringIO()
    adapter = ConsoleAdapter(io.StringIO(lines), stdout, **options)  # type: ignore[arg-type]
    await asyncio.wait_for(adapter.run(core), timeout=20)  # type: ignore[arg-type]
    return stdout.getvalue()


async def one_row(store: Store, sql: str) -> aiosqlite.Row:
    async with store.db.execute(sql) as cursor:
        row = await cursor.fetchone()
    assert row is not None, sql
    return row


async def test_quiz_hidden_answer_reveal_buttons_and_stats(core: Core, store: Store) -> None:
    out = await chat(core, "/start\n/quiz\n||queries and keys||\n/reveal\n1\n4\n/stats\n")

    assert "/quiz" in out.split(TITLE)[0]  # the welcome came first
    assert f"❓ {TITLE} · No. 1\n" in out and "[1] Reveal  [2] Skip" in out
    assert t("en", "answer_saved", title=TITLE, chars=count_of("en", "characters", len("queries and keys"))) in out
    assert "[1] Full answer\n[2] Again  [3] Hard  [4] Good  [5] Easy" in out
    # "1" pressed Full answer: the answer as plain text, the table aligned for wide characters.
    assert "Query, Key and Value: the query asks" in out and "**" not in out
    assert "  part | 含义\n  -----+-----\n  Q    | 查询\n  K    | 键" in out
    assert t("en", "stats_counts", answered=1, graded=1) in out  # "4" pressed Good

    attempt = await one_row(store, "SELECT text, hidden, grade FROM attempts")
    assert tuple(attempt) == ("||queries and keys||", 1, "good")
    # The question was the 4th message (/start, welcome, /quiz, question): the core knows where it is.
    post = await one_row(store, "SELECT chat_key, message_id FROM posts")
    assert tuple(post) == ("console:console", "4")


async def test_in_a_group_a_member_is_refused_and_an_admin_subscribes(core: Core, store: Store) -> None:
    refused = await chat(core, "/subscribe 08:30 Europe/Berlin\n", chat="study", group=True, admins=())
    assert t("en", "admins_only", command="/subscribe") in refused
    accepted = await chat(core, "/subscribe 08:30 Europe/Berlin\n", chat="study", group=True)
    assert t("en", "admins_only", command="/subscribe") not in accepted
    row = await one_row(store, "SELECT subscribed, is_group FROM chats WHERE key = 'console:study'")
    assert tuple(row) == (1, 1)


class EchoCore:
    """Says back what it heard; `/menu` shows three buttons in two rows."""

    def __init__(self) -> None:
        self.heard: list[Incoming] = []
        self.landed: list[tuple[Reply, SentRef]] = []

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.heard.append(incoming)
        if incoming.text == "/menu":
            return [Reply("pick one", buttons=((Button("A", "/a"), Button("B", "/b")), (Button("C", "/c"),)))]
        if incoming.text == "/crash":
            raise RuntimeError("boom")
        return [Reply(f"heard: {escape(incoming.text)}", post_id=len(self.heard))]

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        self.landed.append((reply, ref))


async def test_numbers_press_the_latest_buttons_and_other_lines_are_messages() -> None:
    core = EchoCore()
    out = await chat(
        core, "/menu\n3\n  1 \n7\n/crash\n||all hidden||\nnot ||all|| hidden\n\n", users=("ann",), chat="c1"
    )
    assert [incoming.text for incoming in core.heard] == [
        "/menu", "/c", "/a", "7", "/crash", "||all hidden||", "not ||all|| hidden"
    ]  # fmt: skip
    assert "pick one\n[1] A  [2] B\n[3] C\n" in out
    assert "heard: 7\n" in out and "heard: ||all hidden||" in out  # plain text shows hidden parts as ||…||
    assert "(something went wrong; the error is in the log)" in out  # and the chat went on
    assert [incoming.hidden for incoming in core.heard[-2:]] == [True, False]
    first = core.heard[0]
    assert (first.chat, first.user_id, first.user_name, first.is_group) == (
        ChatRef("console", "c1"),
        "ann",
        "ann",
        False,
    )
    assert await first.is_admin()
    # Every reply that asked for it learnt its message id; ids count the user's lines too.
    assert [ref.message_id for _, ref in core.landed] == ["4", "6", "8", "11", "13"]


@pytest.fixture
def pipe():
    """A real pipe as stdin: reads block until the test types, like a terminal."""
    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as reading, open(write_fd, "w", encoding="utf-8") as typing:
        yield reading, typing


async def test_a_scheduled_post_prints_while_input_is_open_and_its_buttons_work(pipe) -> None:
    stdin, typing = pipe
    core = EchoCore()
    stdout = io.StringIO()
    adapter = ConsoleAdapter(stdin, stdout, group=True, admins=())
    running = asyncio.create_task(adapter.run(core))
    await asyncio.sleep(0)  # let it start waiting for input (a yield, not a wait for time)

    post = Reply("**Daily** question", kind="question", buttons=((Button("Reveal", "/reveal 12"),),))
    ref = await adapter.send(ChatRef("console", "console"), post)
    assert ref == SentRef(ChatRef("console", "console"), "1")
    assert stdout.getvalue() == "── daily question ──\nDaily question\n[1] Reveal\n\n"
    assert not running.done()

    typing.write("1\n")
    typing.close()
    await asyncio.wait_for(running, timeout=20)
    [pressed] = core.heard
    assert pressed.text == "/reveal 12" and pressed.is_group and not await pressed.is_admin()
    assert stdout.getvalue().endswith("heard: /reveal 12\n\n")


async def test_end_of_input_at_once_ends_the_chat_quietly() -> None:
    core = EchoCore()
    assert await chat(core, "") == ""
    assert core.heard == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_a_terminal_gets_a_hint_and_a_prompt_before_each_line() -> None:
    stdout = io.StringIO()
    await ConsoleAdapter(Terminal("hello\n"), stdout).run(EchoCore())
    hint, rest = stdout.getvalue().split("\n", 1)
    assert "/start" in hint and "Ctrl-D" in hint
    assert rest == "> heard: hello\n\n> "


def test_python_m_bot_console_runs_the_loop_from_piped_input(tmp_path: Path, bank_file: Path) -> None:
    env = {**os.environ, "DAILYQ_CONTENT": str(bank_file), "PYTHONPATH": str(ROOT)}
    for name in ("DAILYQ_DB", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "DAILYQ_HTTP_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--db", "tmp/x.sqlite3"],
        input="/quiz\n/reveal\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"❓ {TITLE}" in done.stdout and "Q asks, K matches, V answers." in done.stdout
    assert "> " not in done.stdout  # no prompt when stdin is not a terminal
    assert (tmp_path / "tmp" / "x.sqlite3").exists()


class TerminalSession:
    """`dailyq console` on a pseudo-terminal, as a person at a keyboard runs it."""

    def __init__(self, tmp_path: Path, bank_file: Path) -> None:
        import pty

        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")}
        env |= {"DAILYQ_CONTENT": str(bank_file), "PYTHONPATH": str(ROOT), "TERM": "xterm"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "console", "--db", str(tmp_path / "q.sqlite3")],
            stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.screen = b""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_for(self, text: str, count: int = 1, within: float = 20.0) -> str:
        """The terminal's output once `text` has appeared `count` times (a guard, not a pause)."""
        import select
        import time

        deadline = time.monotonic() + within
        while self.screen.decode(errors="replace").count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} did not appear {count} times:\n{self.screen.decode(errors='replace')}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the console exited and the terminal closed
                    break
        return self.screen.decode(errors="replace")

    def close(self) -> int:
        try:
            return self.process.wait(timeout=20)
        finally:
            os.close(self.master)


def test_a_terminal_edits_lines_and_recalls_history(tmp_path: Path, bank_file: Path) -> None:
    session = TerminalSession(tmp_path, bank_file)
    try:
        prompt = "\n" + PROMPT  # at a line's start ("<text> — " in the help has one too)
        session.wait_for(prompt)
        session.type("/help\r")
        session.wait_for(prompt, count=2)
        session.type("\x1b[A\r")  # up arrow: the last line again
        assert session.wait_for(prompt, count=3).count("/quiz [filter]") == 2
        session.type("/qiz\x1b[D\x7fui\r")  # a typo mended: left arrow, backspace, the right letters
        screen = session.wait_for(prompt, count=4)
        assert TITLE in screen
        session.type("\x04")  # Ctrl-D
        assert session.close() == 0, screen
    except BaseException:
        session.process.kill()
        raise
    assert "^[[" not in screen and "Unknown command" not in screen, screen


# ---- a whole group in one console ----------------------------------------------------------------


async def test_one_console_plays_a_group_each_line_speaking_as_its_named_user() -> None:
    core = EchoCore()
    out = await chat(
        core,
        "/menu\nbob: ||mine||\nstill bob\nCAROL：2\nhttps://example.org: a link\nann:\nnot a name: text\n",
        users=("ann", "bob", "carol"),
        group=True,
        echo=True,
    )
    heard = [(incoming.user_id, incoming.text) for incoming in core.heard]
    assert heard == [
        ("ann", "/menu"),
        ("bob", "||mine||"),
        ("bob", "still bob"),  # a line without a known name: the last speaker
        ("carol", "/b"),  # a full-width colon, any case; a number presses the button as carol
        ("carol", "https://example.org: a link"),  # not one of the users: the line as typed
        ("ann", "not a name: text"),  # "ann:" alone made ann the speaker
    ]
    assert [incoming.user_name for incoming in core.heard] == ["ann", "bob", "bob", "carol", "carol", "ann"]
    # Only the first user is an admin unless told otherwise.
    assert [await incoming.is_admin() for incoming in core.heard] == [True, False, False, False, False, True]
    assert all(incoming.is_group and incoming.chat == ChatRef("console", "console") for incoming in core.heard)
    # --echo: each line after its speaker, so a piped script reads as a transcript.
    assert out.startswith("ann: /menu\npick one\n") and "\nbob: ||mine||\nheard: ||mine||\n" in out
    assert "\ncarol: 2\nheard: /b\n" in out and "\nann:\nann: not a name: text\n" in out


async def test_admins_are_the_ones_named() -> None:
    core = EchoCore()
    await chat(core, "ann: hi\nbob: hi\ncarol: hi\n", users=("ann", "bob", "carol"), admins={"bob", "carol"})
    assert [await incoming.is_admin() for incoming in core.heard] == [False, True, True]


async def test_a_terminal_prompts_with_the_speaker_and_says_who_is_played() -> None:
    stdout = io.StringIO()
    await ConsoleAdapter(Terminal("bob: hi\n"), stdout, users=("ann", "bob", "carol"), group=True).run(EchoCore())
    assert "You play ann (admin), bob and carol: a line `bob: text` speaks as bob." in stdout.getvalue()
    assert stdout.getvalue().endswith("\nann> heard: hi\n\nbob> ")


async def test_a_chinese_console_opens_and_names_its_cast_in_chinese() -> None:
    stdout = io.StringIO()
    adapter = ConsoleAdapter(Terminal("bob: hi\n"), stdout, users=("ann", "bob", "carol"), group=True, lang="zh")
    await adapter.run(EchoCore())
    opening = stdout.getvalue().split("heard")[0]
    assert t("zh", "console_opening") in opening
    assert "你扮演 ann（管理员）、bob 和 carol：" in opening
    assert "admin" not in opening and " and " not in opening


async def test_in_a_group_a_line_answers_the_latest_question_shown(core: Core, store: Store) -> None:
    """The question asks for a reply, and a console cannot point at a message: a line that is not a
    command is a reply to the latest question shown (here a daily post, sent by the scheduler)."""
    stdin = io.StringIO("bob: ||queries and keys||\ncarol: values answer\nann: /reveal\n")
    stdout = io.StringIO()
    adapter = ConsoleAdapter(stdin, stdout, users=("ann", "bob", "carol"), group=True)
    await Transcript(core, user="ann", group=True, admin=True, platform="console", chat="console").say(
        "/subscribe 09:00"
    )
    core.clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    await Scheduler(store, core, {"console": adapter}, core.clock).sweep()

    await asyncio.wait_for(adapter.run(core), timeout=20)
    out = stdout.getvalue()
    assert out.startswith(f"── daily question ──\n❓ {TITLE} · No. 1\n")
    assert out.count(t("en", "answer_saved", title=TITLE, chars=count_of("en", "characters", len("queries and keys")))) == 1
    assert render.to_plain(t("en", "spoiler_reminder")) in out  # carol answered in the clear
    assert t("en", "answered_by", names="bob, carol") in out
    answers = await store.db.execute_fetchall("SELECT user_key, hidden FROM attempts ORDER BY id")
    assert [tuple(row) for row in answers] == [("console:bob", 1), ("console:carol", 0)]


def test_a_second_console_on_the_same_database_is_told_about_consoles(tmp_path: Path, bank_file: Path) -> None:
    from bot.ops.backup import hold_instance_lock

    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")}
    env |= {"DAILYQ_CONTENT": str(bank_file), "PYTHONPATH": str(ROOT)}
    db = tmp_path / "q.sqlite3"
    with hold_instance_lock(db):  # as the first console does
        done = subprocess.run(
            [sys.executable, "-m", "bot", "console", "--db", str(db)],
            input="/start\n", capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"{db} is in use by another dailyq (pid {os.getpid()})" in line
    assert "dailyq console --group --users ann,bob,carol" in line and "--db" in line
    assert "docker" not in line


def console_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_console_help_shows_how_to_play_a_group() -> None:
    done = console_command("--help")
    assert done.returncode == 0, done.stderr
    assert "  $ dailyq console --group --users ann,bob,carol\n" in done.stdout  # the example, as written
    assert "  ann> bob: ||my hidden answer||" in done.stdout
    assert "--admins NAMES" in done.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--users", "ann,bob", "--admins", "carol"], "--admins names carol, not in --users ann,bob"),
        (["--admins", "ann"], "--admins needs --users"),
        (["--users", "ann,bob", "--member"], "with --users, --admins says who the admins are"),
        (["--users", "ann,bob:x"], "each one word without ':'"),
        (["--users", "ann,bob,ANN"], "ann and ANN are one name to the console"),
        (["--user", "ann", "--users", "ann,bob"], "not allowed with argument"),
    ],
)
def test_a_group_that_cannot_be_played_is_refused_with_the_console_usage(args: list[str], problem: str) -> None:
    done = console_command(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: dailyq console") and problem in done.stderr, done.stderr
