"""A full disk after the platform accepted a daily post: the 'sent' write is retried, the post never
sent twice. The database lives on a small tmpfs that the test fills (mounting one needs root)."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.core.model import ChatRef, Reply
from bot.core.scheduler import CLAIM_LEASE
from tests.test_scheduler import FakeSleep, Process, RecordingAdapter, utc


class SmallDisk:
    """A 4 MB tmpfs; `fill()` takes every free byte, `free()` gives them back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler"

    def fill(self) -> None:
        with self._filler.open("ab", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as error:
                assert error.errno == errno.ENOSPC
        assert self.full

    @property
    def full(self) -> bool:
        return self._filler.exists()

    def free(self) -> None:
        self._filler.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {mounted.stderr.decode().strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", str(root)], check=True)


def fill_disk_when_accepted(disk: SmallDisk, adapter: RecordingAdapter) -> None:
    """The disk fills up right after the platform accepts the first question."""

    def platform_accepted(chat: ChatRef, reply: Reply) -> None:
        if reply.kind == "question" and len(adapter.questions()) == 1:
            disk.fill()

    adapter.after_send = platform_accepted


async def test_a_sent_write_failing_on_a_full_disk_is_retried_until_it_succeeds(disk: SmallDisk) -> None:
    clock = FakeClock(utc(2025, 6, 2, 8))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "1")
    async with Process(disk.root / "dailyq.sqlite3", clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        fill_disk_when_accepted(disk, adapter)
        waits_before_space = 2

        async def space_comes_back(seconds: float) -> None:  # an operator clears the disk meanwhile
            nonlocal waits_before_space
            await FakeSleep(clock)(seconds)
            waits_before_space -= 1
            if waits_before_space == 0:
                disk.free()

        process.scheduler._sleep = space_comes_back
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:1", "2025-06-02", "sent")]
    assert len(adapter.questions()) == 1


async def test_a_disk_full_past_the_claims_lease_sends_no_second_copy(disk: SmallDisk) -> None:
    clock = FakeClock(utc(2025, 6, 2, 8))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "2")
    async with Process(disk.root / "dailyq.sqlite3", clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        fill_disk_when_accepted(disk, adapter)
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()  # the platform has the post; the disk stays full all sweep
        assert await process.daily_posts() == [("tg:2", "2025-06-02", "pending")]
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            await process.scheduler.sweep()
        disk.free()
        clock.advance(CLAIM_LEASE)  # the claim is stale: a takeover would send it again
        await process.scheduler.sweep()
        clock.advance(CLAIM_LEASE)
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:2", "2025-06-02", "sent")]
        [(message_id,)] = await process.store.db.execute_fetchall("SELECT message_id FROM posts")
    assert len(adapter.questions()) == 1
    assert message_id == "m1"
