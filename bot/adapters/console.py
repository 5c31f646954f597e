"""The console chat (`dailyq console`): the whole daily loop in a terminal, no token needed.

Each line typed is a message in one chat. Replies print as plain text with hidden parts shown as
`||…||`; buttons print as numbered choices, and a line that is just a number presses that button
of the latest message that had buttons. A line that is not a command answers the latest question
shown, as a reply to that message would on Telegram or Discord (a console cannot point at a
message). Scheduled posts print as they arrive while input stays open; end of input ends the chat.

One console can play a whole group (`--users ann,bob,carol`): a line `bob: text` speaks as bob,
and a line without a known name speaks as the last speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from typing import TextIO

try:  # line editing and history for input(); not on every platform
    import readline
    import termios
except ImportError:
    readline = None  # type: ignore[assignment]

from bot.core import messages, render
from bot.core.commands.inbound import looks_hidden
from bot.core.model import Button, ChatRef, Incoming, Reply, SentRef
from bot.core.ports import Core

log = logging.getLogger(__name__)

PROMPT = "> "
SCHEDULED_HEADERS = {"question": "console_daily_question", "reveal": "console_reveal"}  # message keys
# "bob: text" (a full-width colon too, as a Chinese keyboard types it): bob speaks.
SPEAKER = re.compile(r"\s*([^\s:：]+)\s*[:：]\s?(.*)", re.DOTALL)


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        stdin: TextIO,
        stdout: TextIO,
        *,
        users: Sequence[str] = ("you",),
        admins: Collection[str] | None = None,
        chat: str = "console",
        group: bool = False,
        echo: bool = False,
        lang: str = messages.LANGUAGES[0],
    ) -> None:
        """`users` are the people typing (the first speaks first); `admins` those of them who are the
        group's admins (default: the first). `echo` prints each line read after its speaker, so
        input piped from a file reads as a transcript. `lang` is the configured language, for the
        console's own words before any reply has told the chat's."""
        self._stdin = stdin
        self._stdout = stdout
        self._users = {name.casefold(): name for name in users}
        self._speaker = users[0]
        self._admins = set(users[:1] if admins is None else admins)
        self._chat = ChatRef(self.platform, chat)
        self._group = group
        self._echo = echo
        self._lang = lang
        self._message_ids = itertools.count(1)  # one sequence for the users' and the bot's messages
        self._buttons: list[Button] = []  # of the latest message that had any, numbered from 1
        self._latest_question: str | None = None  # message id of the latest question shown here
        self._interactive = stdin.isatty()
        # At the process's own terminal input() edits lines (arrows, history) with readline.
        self._edits_lines = self._interactive and stdin is sys.stdin and readline is not None
        self._may_read = threading.Event()  # input() prompts only once the last line's replies are out
        self._in_input = threading.Event()

    async def run(self, core: Core) -> None:
        lines = self._read_lines()
        if self._interactive:
            self._write(messages.t(self._lang, "console_opening") + "\n")
            if len(self._users) > 1:
                other = list(self._users.values())[1]
                self._write(messages.t(self._lang, "console_cast", cast=self._cast(), speaker=other) + "\n")
        with self._terminal_restored():
            self._prompt()
            while (line := await lines.get()) is not None:
                text = line.rstrip("\r\n")
                if text.strip():
                    await self._handle(core, text)
                self._prompt()

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        if self._interactive:
            self._write("\n")  # off the prompt's line
        ref = self._show(reply, chat, header=SCHEDULED_HEADERS.get(reply.kind, "console_scheduled"))
        self._prompt_again()
        return ref

    def _cast(self) -> str:
        """Who the console plays: "ann (admin), bob and carol"."""
        names = [
            messages.t(self._lang, "console_admin", name=name) if name in self._admins else name
            for name in self._users.values()
        ]
        return messages.join_list_and(self._lang, names)

    def _prompt_text(self) -> str:
        return f"{self._speaker}{PROMPT}" if len(self._users) > 1 else PROMPT

    def _read_lines(self) -> asyncio.Queue[str | None]:
        """Lines of stdin as they come; None at end of input.

        A daemon thread does the blocking reads, so the event loop keeps running (scheduled posts
        arrive while the user thinks) and a blocked read never holds up the exit.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def read() -> None:
            # RuntimeError: the loop closed, nobody listens; ValueError/OSError: stdin closed.
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                try:
                    for line in self._edited_lines() if self._edits_lines else iter(self._stdin.readline, ""):
                        loop.call_soon_threadsafe(queue.put_nowait, line)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        return queue

    def _edited_lines(self) -> Iterator[str]:
        """Lines read with input(), which edits them with readline and writes the prompt itself."""
        while self._may_read.wait():
            self._may_read.clear()
            self._in_input.set()
            try:
                line = input(self._prompt_text())
            except EOFError:
                return
            finally:
                self._in_input.clear()
            yield line + "\n"

    @contextlib.contextmanager
    def _terminal_restored(self) -> Iterator[None]:
        """readline changes the terminal's modes while it reads; a Ctrl-C ends the process in the
        middle of a read, so the modes are put back here, not left to the reading thread."""
        if not self._edits_lines:
            yield
            return
        saved = termios.tcgetattr(self._stdin.fileno())
        try:
            yield
        finally:
            termios.tcsetattr(self._stdin.fileno(), termios.TCSADRAIN, saved)

    async def _handle(self, core: Core, text: str) -> None:
        text = self._take_speaker(text)
        if self._echo:
            said = f"{self._speaker}: {text}" if len(self._users) > 1 else f"{PROMPT}{text}"
            self._write(said.rstrip() + "\n")
        if not text.strip():  # "bob:" alone: bob speaks next
            return
        choice = text.strip()
        if choice.isdigit() and 1 <= int(choice) <= len(self._buttons):
            button = self._buttons[int(choice) - 1]
            if button.url:
                self._write(f"(open {button.url})\n\n")
                return
            text = button.payload
        speaker = self._speaker
        incoming = Incoming(
            platform=self.platform,
            chat=self._chat,
            user_id=speaker,
            user_name=speaker,
            text=text,
            is_group=self._group,
            is_admin=self._admin_check(speaker),
            # Commands find their question themselves; other lines answer the latest one shown.
            reply_to=None if text.lstrip().startswith("/") else self._latest_question,
            hidden=looks_hidden(text),
            message_id=str(next(self._message_ids)),
        )
        try:
            replies = await core.handle(incoming)
        except Exception:  # a bug must not end the chat: the next line may work
            log.exception("console: handling %r failed", text)
            self._write("(something went wrong; the error is in the log)\n\n")
            return
        for reply in replies:
            ref = self._show(reply, reply.chat or self._chat)
            if reply.post_id is not None:
                await core.sent(reply, ref)

    def _take_speaker(self, line: str) -> str:
        """The line without a leading `name:` of one of the users, who becomes the speaker."""
        match = SPEAKER.match(line) if len(self._users) > 1 else None
        if match is None or match[1].casefold() not in self._users:
            return line
        self._speaker = self._users[match[1].casefold()]
        return match[2]

    def _admin_check(self, speaker: str) -> Callable[[], Awaitable[bool]]:
        async def is_admin() -> bool:
            return speaker in self._admins

        return is_admin

    def _show(self, reply: Reply, chat: ChatRef, header: str | None = None) -> SentRef:
        """Print a reply; `header` is the message key of a line above it (a scheduled post's)."""
        lang = reply.lang or messages.LANGUAGES[0]
        lines = [f"── {messages.t(lang, header)} ──"] if header else []
        if chat != self._chat:
            lines.append(f"── {messages.t(lang, 'console_to', chat=chat.key)} ──")
        elif reply.private and self._group:
            only = (
                messages.t(lang, "console_only_you")
                if len(self._users) == 1
                else messages.t(lang, "console_only_user", name=self._speaker)
            )
            lines.append(f"── {only} ──")
        lines.append(render.to_plain(reply.text))
        numbers = itertools.count(1)
        rows = [
            "  ".join(f"[{next(numbers)}] {button.label}" for button in row) for row in reply.buttons if row
        ]
        if rows:
            self._buttons = [button for row in reply.buttons for button in row]
            lines += rows
        self._write("\n".join(lines) + "\n\n")
        ref = SentRef(chat, str(next(self._message_ids)))
        if reply.kind == "question" and chat == self._chat:
            self._latest_question = ref.message_id
        return ref

    def _prompt(self) -> None:
        """Ready for the next line: input() writes the prompt itself when it edits lines."""
        if self._edits_lines:
            self._may_read.set()
        elif self._interactive:
            self._write(self._prompt_text())

    def _prompt_again(self) -> None:
        """After a scheduled post: the prompt again, with what was typed so far."""
        if self._edits_lines:
            if self._in_input.is_set():
                self._write(self._prompt_text() + readline.get_line_buffer())
        elif self._interactive:
            self._write(self._prompt_text())

    def _write(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()
