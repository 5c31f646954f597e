"""A full disk after the platform accepted a daily post: the 'sent' write is retried, the post never
sent twice. The database lives on a small tmpfs that the test fills (mounting one needs root)."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.model import ChatRef, Reply
from bot.core.scheduler import CLAIM_LEASE
from tests.clock import FakeClock
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


class SpaceComesBack(FakeSleep):
    """Backoff waits during which an operator clears the disk, at the second one."""

    def __init__(self, clock: FakeClock, disk: SmallDisk) -> None:
        super().__init__(clock)
        self.disk = disk

    async def __call__(self, seconds: float) -> None:
        await super().__call__(seconds)
        if len(self.waits) == 2:
            self.disk.free()


@asynccontextmanager
async def nine_oclock_with_the_disk_filling_after_the_send(
    disk: SmallDisk, *, space_comes_back: bool
) -> AsyncIterator[Process]:
    """A process at 09:00 with a chat subscribed for 09:00; the disk fills up right after the
    platform accepts the first question (and is cleared during the retries if `space_comes_back`)."""
    clock = FakeClock(utc(2025, 6, 2, 8))
    adapter = RecordingAdapter(clock)

    def platform_accepted(chat: ChatRef, reply: Reply) -> None:
        if reply.kind == "question" and len(adapter.questions()) == 1:
            disk.fill()

    adapter.after_send = platform_accepted
    process = Process(disk.root / "dailyq.sqlite3", clock, adapter)
    if space_comes_back:
        process.sleep = SpaceComesBack(clock, disk)
    async with process:
        await process.say(ChatRef("tg", "1"), "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        yield process


async def test_a_sent_write_failing_on_a_full_disk_is_retried_until_it_succeeds(disk: SmallDisk) -> None:
    async with nine_oclock_with_the_disk_filling_after_the_send(disk, space_comes_back=True) as process:
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:1", "2025-06-02", "sent")]
    assert len(process.adapter.questions()) == 1


async def test_a_disk_full_past_the_claims_lease_sends_no_second_copy(disk: SmallDisk) -> None:
    async with nine_oclock_with_the_disk_filling_after_the_send(disk, space_comes_back=False) as process:
        await process.scheduler.sweep()  # the platform has the post; the disk stays full all sweep
        assert await process.daily_posts() == [("tg:1", "2025-06-02", "pending")]
        for _ in range(3):
            process.clock.advance(timedelta(minutes=1))
            await process.scheduler.sweep()
        disk.free()
        process.clock.advance(CLAIM_LEASE)  # the claim is stale: a takeover would send it again
        await process.scheduler.sweep()
        process.clock.advance(CLAIM_LEASE)
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:1", "2025-06-02", "sent")]
        [(message_id,)] = await process.store.db.execute_fetchall("SELECT message_id FROM posts")
    assert len(process.adapter.questions()) == 1
    assert message_id == "m1"
