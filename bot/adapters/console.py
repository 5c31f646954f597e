"""The console chat (`dailyq console`): the whole daily loop in a terminal, no token needed.

Each line typed is a message from one user in one chat. Replies print as plain text with hidden
parts shown as `||…||`; buttons print as numbered choices, and a line that is just a number
presses that button of the latest message that had buttons. Scheduled posts print as they arrive
while input stays open; end of input ends the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

try:  # line editing and history for input(); not on every platform
    import readline
    import termios
except ImportError:
    readline = None  # type: ignore[assignment]

from bot.core import render
from bot.core.commands.inbound import looks_hidden
from bot.core.model import Button, ChatRef, Incoming, Reply, SentRef
from bot.core.ports import Core

log = logging.getLogger(__name__)

PROMPT = "> "
SCHEDULED_HEADERS = {"question": "daily question", "reveal": "reveal"}


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        stdin: TextIO,
        stdout: TextIO,
        *,
        user: str = "you",
        chat: str = "console",
        group: bool = False,
        member: bool = False,
    ) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._user = user
        self._chat = ChatRef(self.platform, chat)
        self._group = group
        self._member = member
        self._message_ids = itertools.count(1)  # one sequence for the user's and the bot's messages
        self._buttons: list[Button] = []  # of the latest message that had any, numbered from 1
        self._interactive = stdin.isatty()
        # At the process's own terminal input() edits lines (arrows, history) with readline.
        self._edits_lines = self._interactive and stdin is sys.stdin and readline is not None
        self._may_read = threading.Event()  # input() prompts only once the last line's replies are out
        self._in_input = threading.Event()

    async def run(self, core: Core) -> None:
        lines = self._read_lines()
        if self._interactive:
            self._write("Type /start to begin, /help for every command; Ctrl-D quits.\n")
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
        ref = self._show(reply, chat, header=SCHEDULED_HEADERS.get(reply.kind, "scheduled"))
        self._prompt_again()
        return ref

    async def _is_admin(self) -> bool:
        return not self._member

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
                line = input(PROMPT)
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
        choice = text.strip()
        if choice.isdigit() and 1 <= int(choice) <= len(self._buttons):
            button = self._buttons[int(choice) - 1]
            if button.url:
                self._write(f"(open {button.url})\n\n")
                return
            text = button.payload
        incoming = Incoming(
            platform=self.platform,
            chat=self._chat,
            user_id=self._user,
            user_name=self._user,
            text=text,
            is_group=self._group,
            is_admin=self._is_admin,
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

    def _show(self, reply: Reply, chat: ChatRef, header: str | None = None) -> SentRef:
        lines = [f"── {header} ──"] if header else []
        if chat != self._chat:
            lines.append(f"── to {chat.key} ──")
        elif reply.private and self._group:
            lines.append("── only you see this ──")
        lines.append(render.to_plain(reply.text))
        numbers = itertools.count(1)
        rows = [
            "  ".join(f"[{next(numbers)}] {button.label}" for button in row) for row in reply.buttons if row
        ]
        if rows:
            self._buttons = [button for row in reply.buttons for button in row]
            lines += rows
        self._write("\n".join(lines) + "\n\n")
        return SentRef(chat, str(next(self._message_ids)))

    def _prompt(self) -> None:
        """Ready for the next line: input() writes the prompt itself when it edits lines."""
        if self._edits_lines:
            self._may_read.set()
        elif self._interactive:
            self._write(PROMPT)

    def _prompt_again(self) -> None:
        """After a scheduled post: the prompt again, with what was typed so far."""
        if self._edits_lines:
            if self._in_input.is_set():
                self._write(PROMPT + readline.get_line_buffer())
        elif self._interactive:
            self._write(PROMPT)

    def _write(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()
