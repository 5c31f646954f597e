"""The one interface between the core and a platform, and the platform error kinds.

They belong to the core: adapters import them, never the other way round.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.model import ChatRef, Incoming, Reply, SentRef


class Core(Protocol):
    """What an adapter sees of the core.

    `handle` turns one input (a message, a command, a button press) into replies. The adapter
    sends them; for a reply that carries a `post_id` it then calls `sent` with where the message
    landed, so that a later reply-to-this-message can be matched to the question.
    """

    async def handle(self, incoming: Incoming) -> list[Reply]: ...

    async def sent(self, reply: Reply, ref: SentRef) -> None: ...


class Adapter(Protocol):
    platform: str

    async def run(self, core: Core) -> None:
        """Take input until cancelled (or, for the console, until end of input)."""

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        """Send one reply unprompted (a daily post, a reveal). Raises `PlatformError` kinds."""


class PlatformError(Exception):
    """A send failed; the subclass says what the scheduler should do about it."""


class ChatGone(PlatformError):
    """The bot was removed, the chat deleted, or the user blocked the bot: unsubscribe it."""


class ChatMoved(PlatformError):
    """The chat has a new id (a Telegram group upgraded to a supergroup): move its state."""

    def __init__(self, new_chat: ChatRef) -> None:
        super().__init__(f"chat moved to {new_chat.key}")
        self.new_chat = new_chat


class TransientError(PlatformError):
    """Worth retrying later (rate limit, 5xx, timeout, network)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
