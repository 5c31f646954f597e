"""A chat with the core that reads like a transcript: `await chat.say("/quiz")`, `await chat.press("Reveal")`.

It plays the adapter's part: every reply gets a message id, and the core hears where its questions
landed (`Core.sent`), so `say(..., reply_to=question)` answers that question the way a reply does
on Telegram or Discord.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Reply, SentRef


@dataclass
class _ChatLog:
    """What was said in one chat, shared by everyone in it."""

    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    replies: list[tuple[str, Reply]] = field(default_factory=list)  # (message id, reply)


class Transcript:
    def __init__(
        self,
        core: Core,
        *,
        user: str = "ann",
        name: str | None = None,
        group: bool = False,
        chat: str = "chat",
        admin: bool | None = None,
        lang: str | None = None,
        roles: tuple[str, ...] = (),
        platform: str = "test",
        thread: str | None = None,
        _log: _ChatLog | None = None,
    ) -> None:
        self.core = core
        self.user = user
        self.name = name or user.capitalize()
        self.group = group
        self.chat = ChatRef(platform, chat, thread)
        self.admin = (not group) if admin is None else admin
        self.lang = lang
        self.roles = roles
        self.log = _log or _ChatLog()
        self.admin_checks = 0

    def member(self, user: str, *, admin: bool = False, name: str | None = None, **kw: object) -> Transcript:
        """Someone else in the same chat (same messages, same language unless given)."""
        options: dict = {"lang": self.lang, "roles": (), **kw}
        return Transcript(
            self.core,
            user=user,
            name=name,
            group=self.group,
            chat=self.chat.chat_id,
            admin=admin,
            platform=self.chat.platform,
            thread=self.chat.thread_id,
            _log=self.log,
            **options,
        )

    async def _is_admin(self) -> bool:
        self.admin_checks += 1
        return self.admin

    async def say(self, text: str, *, reply_to: Reply | None = None, hidden: bool = False) -> list[Reply]:
        incoming = Incoming(
            platform=self.chat.platform,
            chat=self.chat,
            user_id=self.user,
            user_name=self.name,
            text=text,
            is_group=self.group,
            is_admin=self._is_admin,
            reply_to=self.message_id(reply_to) if reply_to else None,
            hidden=hidden,
            lang=self.lang,
            roles=self.roles,
            message_id=str(next(self.log.ids)),
        )
        replies = await self.core.handle(incoming)
        for reply in replies:
            await self.deliver(reply)
        return replies

    async def deliver(self, reply: Reply) -> str:
        """Show a reply in this chat, as an adapter's send would; returns its message id."""
        message_id = str(next(self.log.ids))
        self.log.replies.append((message_id, reply))
        if reply.post_id is not None:
            await self.core.sent(reply, SentRef(reply.chat or self.chat, message_id))
        return message_id

    def message_id(self, reply: Reply) -> str:
        return next(mid for mid, r in self.log.replies if r is reply)

    async def press(self, label: str) -> list[Reply]:
        """Press the newest button with this label, as a platform hands its payload to the core."""
        for _, reply in reversed(self.log.replies):
            for row in reply.buttons:
                for button in row:
                    if button.label == label:
                        return await self.say(button.payload)
        raise AssertionError(f"no button {label!r} in this chat")


def text(replies: list[Reply]) -> str:
    return "\n".join(reply.text for reply in replies)


def labels(reply: Reply) -> list[str]:
    return [button.label for row in reply.buttons for button in row]
