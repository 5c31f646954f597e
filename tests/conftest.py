"""Fixtures that several test files share."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.store import SQLiteStore
from bot.feedback import reviewer_from
from tests.clock import FakeClock
from tests.fakes.openai_api import API_KEY, MODEL, FakeOpenAI


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    """The fake OpenAI-compatible server, for the feedback tests."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def core_with_feedback(
    tmp_path: Path, llm: FakeOpenAI
) -> AsyncIterator[Callable[[Bank, FakeClock], Awaitable[Core]]]:
    """Makes a core on a fresh SQLite file whose reviewer the settings build, as the app does,
    pointed at `llm`; closes them after the test."""
    made: list[Core] = []

    async def make(bank: Bank, clock: FakeClock) -> Core:
        settings = Settings(
            db=tmp_path / "dailyq.sqlite3",
            lang="en",
            llm_url=llm.base_url,
            llm_model=MODEL,
            llm_api_key=API_KEY,
        )
        reviewer = reviewer_from(settings)
        assert reviewer is not None
        core = Core(
            await SQLiteStore.open(settings.db),
            bank,
            settings,
            clock,
            random.Random(7),
            fuzz=False,
            reviewer=reviewer,
        )
        made.append(core)
        return core

    yield make
    llm.release()
    for core in made:
        await core.reviewer.close()  # type: ignore[union-attr]
        await core.store.close()
