"""The small value types every part of dailyq shares.

Rich text everywhere is Markdown (the language the banks are written in), with one extension:
`||…||` marks a hidden (spoiler) part. Text that comes from users or from the bank's metadata is
escaped with `render.escape` before the core embeds it in a sentence; `render` turns the result
into Telegram HTML, Discord markdown or plain text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class Question:
    id: str
    title: str  # heading text without the #s and the "Q." prefix, inline markdown kept
    answer: str  # markdown body without the metadata line and without <mark> tags
    summary: str | None = None  # text inside <mark>…</mark>, label kept, tags dropped
    chapter: str | None = None  # the "#" heading above the question
    section: str | None = None  # the "##" heading above the question
    company: str | None = None
    round: str | None = None
    date: str | None = None  # as written
    tags: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    file: str = ""  # relative to the bank's root
    line: int = 0  # 1-based line of the heading
    images: tuple[str, ...] = ()  # absolute paths of referenced images that exist


@dataclass(frozen=True)
class ChatRef:
    """Where a message goes: a chat, plus a Telegram forum topic or a Discord thread."""

    platform: str
    chat_id: str
    thread_id: str | None = None

    @property
    def key(self) -> str:
        """The chat's key in the database: `platform:chat_id`, plus `/thread` when there is one."""
        base = f"{self.platform}:{self.chat_id}"
        return f"{base}/{self.thread_id}" if self.thread_id else base

    @classmethod
    def from_key(cls, key: str) -> ChatRef:
        platform, _, rest = key.partition(":")
        chat_id, _, thread = rest.partition("/")
        return cls(platform, chat_id, thread or None)


@dataclass(frozen=True)
class Button:
    """A button; pressing it sends `payload` back to the core as the text of an ordinary Incoming.

    Payloads are short command lines (`/grade good 12`) so that they fit Telegram's 64-byte
    callback data and Discord's 100-character custom ids, and survive restarts.
    `url` buttons open a link instead (a deep link to a private chat, say).
    """

    label: str
    payload: str = ""
    url: str | None = None


ReplyKind = Literal["text", "question", "reveal", "answer", "notice"]


@dataclass(frozen=True)
class Reply:
    text: str  # markdown; ||…|| hidden
    buttons: tuple[tuple[Button, ...], ...] = ()  # rows of buttons
    chat: ChatRef | None = None  # None: the chat the Incoming came from
    private: bool = False  # only for the user who asked (Discord ephemeral, Telegram private chat)
    kind: ReplyKind = "text"
    question: Question | None = None  # for question/reveal/answer: embeds, photos, threads
    post_id: int | None = None  # set when the core wants to learn the platform message id (Core.sent)
    reply_to: str | None = None  # platform message id this reply answers
    lang: str | None = None  # the text's language, for words an adapter adds (the console's headers)


@dataclass(frozen=True)
class SentRef:
    chat: ChatRef
    message_id: str


async def _not_admin() -> bool:
    return False


@dataclass(frozen=True)
class Incoming:
    platform: str
    chat: ChatRef
    user_id: str
    user_name: str
    text: str
    is_group: bool = False
    # Asked lazily: it costs a platform call on Telegram (getChatMember) and Discord.
    is_admin: Callable[[], Awaitable[bool]] = _not_admin
    reply_to: str | None = None  # platform message id the user replied to
    hidden: bool = False  # every non-whitespace character was inside spoilers
    lang: str | None = None  # language the platform reports for the user
    roles: tuple[str, ...] = ()  # Discord role ids of the user (never names: anyone may copy a name)
    message_id: str | None = None
    # The user changed an earlier message: it may only change the answer to the question it
    # replies to (which question an unreplied original answered is not known).
    edited: bool = False

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"
