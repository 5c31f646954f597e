"""Which process leads: the one that runs the scheduler's sweeps and, in Telegram polling mode,
the poller (Telegram takes one getUpdates consumer at a time).

On SQLite there is one process (the instance lock sees to it), and it always leads: `SoleProcess`.
On PostgreSQL any number of processes serve one bot, each answering what reaches it, and the
holder of an advisory lock leads (bot.core.store.coordination.AdvisoryLockElection); when it dies,
another takes over. Leading only saves work and keeps Telegram's single poller: the database's
claims keep a daily post to one send even if two processes swept at once (bot.core.scheduler).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

Sleep = Callable[[float], Awaitable[None]]


class Leadership(Protocol):
    """Whether this process leads, and a way to wait for that to change."""

    @property
    def is_leader(self) -> bool: ...

    async def wait_for(self, leading: bool) -> None:
        """Return once `is_leader == leading` (at once if it already is)."""

    async def run(self) -> None:
        """Take part in the election until cancelled."""


class SoleProcess:
    """SQLite: the only process on the database, always the leader."""

    is_leader = True

    async def run(self) -> None:
        return  # nobody to elect

    async def wait_for(self, leading: bool) -> None:
        if not leading:
            await asyncio.Event().wait()  # never deposed


class Flag:
    """A boolean whose changes can be awaited."""

    def __init__(self) -> None:
        self.value = False
        self._changed = asyncio.Event()

    def set(self, value: bool) -> bool:
        """Set it; True when that changed it."""
        if value == self.value:
            return False
        self.value = value
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def wait_for(self, value: bool) -> None:
        while self.value != value:
            await self._changed.wait()


class FlagLeadership:
    """A Leadership that is a flag someone else keeps (see AdvisoryLockElection.polling)."""

    def __init__(self, flag: Flag) -> None:
        self._flag = flag

    @property
    def is_leader(self) -> bool:
        return self._flag.value

    async def wait_for(self, leading: bool) -> None:
        await self._flag.wait_for(leading)

    async def run(self) -> None:
        return  # whoever keeps the flag campaigns


async def while_leading(
    leadership: Leadership, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """`start()` each time this process becomes the leader, `stop()` each time it stops being it;
    until cancelled, and then `stop()` if started."""
    while True:
        await leadership.wait_for(True)
        await start()
        try:
            await leadership.wait_for(False)
        finally:
            await stop()


