"""A study group's day in one console, three members in one process: the daily post arrives, two
members answer hidden and one in the clear (and is reminded), the admin reveals, all grade, and
/top lists the three. The README's "A day in a study group" is this transcript, compared here so it
cannot drift; `DAILYQ_WRITE_README=1 pytest tests/test_study_group.py` rewrites it from this run.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.adapters.console import ConsoleAdapter
from bot.config import Settings
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore
from tests.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WAIT = 20.0  # failure guard; each step takes milliseconds
# One question of the bundled bank (content/6-major llms/6.2 DeepSeek.md), its answer shortened.
BANK = """\
### Q. DeepSeek-R1 相比其他大模型做了哪些优化？
> **Company**: 美团 | **Round**: 大模型算法工程师 一面 | **Date**: 2025-08-31 | **Tags**: [DeepSeek-R1, LLM, 优化]

**1. 训练范式：融入多阶段训练＋Cold-Start 数据**
**2. 推理链强化与思考时间延展**：GRPO 在同一 Prompt 下生成多响应，组内奖励归一化替代 Critic。

<mark>**总结**：DeepSeek-R1 引入 Cold-Start 加 RL、GRPO 策略、推理链增强等创新机制，实现低成本、高性能的推理模型。</mark>
"""
COMMAND = "dailyq console --group --users ann,bob,carol --echo"
ZONE = ZoneInfo("Europe/Berlin")
MEMBERS = ("ann", "bob", "carol")  # ann, the first, is the group's admin
SUBSCRIBE = "ann: /subscribe 09:00 Europe/Berlin\n"
AFTER_THE_POST = """\
bob: ||多阶段训练 + cold-start 数据，再用 GRPO 做强化学习||
carol: ||蒸馏出小模型，4-bit 量化部署||
ann: GRPO drops the critic: rewards are normalised within a group of answers
ann: /reveal
4
bob: 3
carol: 5
/top
"""
README_START = "<!-- transcript: tests/test_study_group.py -->\n```\n"
README_BLOCK = re.compile(re.escape(README_START) + r"(.*?)```\n", re.DOTALL)


class Screen(io.StringIO):
    """The console's stdout; a test can wait until some text has appeared on it."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.changed.set()
        return super().write(text)

    async def shows(self, text: str) -> None:
        while text not in self.getvalue():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), WAIT)


def keyboard() -> tuple[TextIO, TextIO]:
    """A real pipe as the console's stdin: reads block until the test types, as at a terminal."""
    read_fd, write_fd = os.pipe()
    return open(read_fd, encoding="utf-8"), open(write_fd, "w", encoding="utf-8")


async def study_group_day(tmp_path: Path) -> str:
    """What `dailyq console --group --users ann,bob,carol --echo` prints for the day's lines."""
    (tmp_path / "bank.md").write_text(BANK, encoding="utf-8")
    loaded = load(tmp_path / "bank.md")
    assert not loaded.errors, loaded.errors
    clock = FakeClock(datetime(2026, 3, 2, 8, 0, tzinfo=ZONE))  # a Monday, before the post
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    stdin, typing = keyboard()
    try:
        with stdin, typing:
            core = Core(store, loaded.bank, Settings(lang="en"), clock, fuzz=False)
            screen = Screen()
            console = ConsoleAdapter(stdin, screen, users=MEMBERS, group=True, echo=True)
            running = asyncio.create_task(console.run(core))
            typing.write(SUBSCRIBE)
            typing.flush()
            await screen.shows("Subscribed")
            clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=ZONE))
            await Scheduler(store, core, {console.platform: console}, clock).sweep()  # the daily post
            typing.write(AFTER_THE_POST)
            typing.close()
            await asyncio.wait_for(running, WAIT)
    finally:
        await store.close()
    return screen.getvalue()


async def test_a_study_group_plays_its_day_in_one_console(tmp_path: Path) -> None:
    day = await study_group_day(tmp_path)
    subscribed, bob, carol, ann, reveal, *grades, top = chunks(day)
    assert subscribed.startswith("ann: /subscribe 09:00 Europe/Berlin\nSubscribed: a question at 09:00")
    assert "\n\n── daily question ──\n❓ DeepSeek-R1 相比其他大模型做了哪些优化？ · No. 1\n" in subscribed
    assert bob.startswith("bob: ||") and "Got your answer" in bob and "Tip:" not in bob
    assert carol.startswith("carol: ||") and "Got your answer" in carol and "Tip:" not in carol
    assert ann.startswith("ann: GRPO") and "Got your answer" in ann and "Tip: hide answers" in ann
    assert reveal.startswith("ann: /reveal\n💡 DeepSeek-R1") and "Answered by: bob, carol, ann" in reveal
    assert [grade.splitlines()[0] for grade in grades] == ["ann: 4", "bob: 3", "carol: 5"]
    assert [grade.splitlines()[1].split(".")[0] for grade in grades] == [
        "Graded: Good", "Graded: Hard", "Graded: Easy"
    ]  # fmt: skip
    assert top.startswith("carol: /top\n")
    for board in top.split("🏆")[1:]:
        assert re.findall(r"\d\. (\w+): answered 1, graded 1", board) == ["ann", "bob", "carol"]


def chunks(transcript: str) -> list[str]:
    """The transcript cut at each typed line: the line and the console's answer to it."""
    starts = [m.start() for m in re.finditer(rf"^(?:{'|'.join(MEMBERS)}): ", transcript, re.MULTILINE)]
    return [transcript[a:b].strip("\n") for a, b in zip(starts, [*starts[1:], len(transcript)], strict=True)]


async def test_the_readme_shows_this_day_as_the_bot_says_it_today(tmp_path: Path) -> None:
    day = f"$ {COMMAND}\n{await study_group_day(tmp_path)}".rstrip("\n") + "\n"
    readme = README.read_text(encoding="utf-8")
    shown = README_BLOCK.search(readme)
    assert shown, f"README.md has no block starting {README_START!r}"
    if os.environ.get("DAILYQ_WRITE_README") == "1":
        README.write_text(readme[: shown.start(1)] + day + readme[shown.end(1) :], encoding="utf-8")
        return
    assert shown[1] == day, (
        "README.md's study group transcript differs from what the bot says today; rewrite it with "
        "DAILYQ_WRITE_README=1 pytest tests/test_study_group.py"
    )
