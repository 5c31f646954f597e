"""Chinese as a Chinese reader expects it: no English inside Chinese sentences, full-width
conventions (、 between names, no spaces around full-width punctuation), and an answer's length
counted without the spoiler markers."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.core.commands import Core
from bot.core.messages import CATALOG, count_of, t
from bot.core.scheduler import Scheduler
from bot.core.store import Store
from tests.test_group_answers import monday_core
from tests.test_quiz import MONDAY_8AM, question_of
from tests.transcript import Transcript, text

FULL_WIDTH_PUNCTUATION = "，。：；！？（）「」『』、…"


@pytest.fixture
def core(store: Store) -> Core:
    return monday_core(store)


def test_no_space_touches_full_width_punctuation_in_the_chinese_catalog() -> None:
    stray = re.compile(rf" [{FULL_WIDTH_PUNCTUATION}]|[{FULL_WIDTH_PUNCTUATION}] ")
    # Markup is not seen by the reader: "！** 每天" reads as "！ 每天".
    as_read = {key: message.replace("**", "").replace("`", "") for key, message in CATALOG["zh"].items()}
    assert [key for key, message in as_read.items() if stray.search(message)] == []


async def test_subscribing_in_chinese_names_the_days_in_chinese(core: Core) -> None:
    admin = Transcript(core, user="ada", group=True, chat="g", admin=True, lang="zh")
    subscribed = text(await admin.say("/subscribe 09:00 Asia/Shanghai"))
    assert "日期：每天" in subscribed and "daily" not in subscribed
    assert "周一至周五" in text(await admin.say("/settings days mon-fri"))
    assert "周一、周三、周五" in text(await admin.say("/settings days mon,wed,fri"))
    assert "days: mon,wed,fri" not in text(await admin.say("/settings"))


async def test_english_keeps_the_days_as_typed(core: Core) -> None:
    admin = Transcript(core, user="ada", group=True, chat="g", admin=True, lang="en")
    assert "days: daily" in text(await admin.say("/subscribe 09:00"))
    assert "mon-fri" in text(await admin.say("/settings days weekdays"))


async def test_help_in_chinese_has_chinese_placeholders(core: Core) -> None:
    chinese = text(await Transcript(core, lang="zh").say("/help"))
    assert "[filter]" not in chinese and "<text>" not in chinese and "[id]" not in chinese
    assert "`/quiz [筛选]`" in chinese and "`/answer <回答>`" in chinese
    english = text(await Transcript(core, lang="en").say("/help"))
    assert "`/quiz [filter]`" in english and "`/answer <text>`" in english


async def test_names_and_lists_are_joined_with_the_chinese_comma(core: Core) -> None:
    ada = Transcript(core, user="ada", group=True, chat="g", admin=True, lang="zh")
    bob = ada.member("bob")
    [asked] = await ada.say("/quiz")
    await ada.say("/answer 一", reply_to=asked)
    await bob.say("/answer 二", reply_to=asked)
    revealed = text(await ada.say(f"/reveal {asked.post_id}"))
    assert t("zh", "answered_by", names="Ada、Bob") in revealed
    tags = text(await ada.say("/tags"))
    assert ", " not in tags and "、" in tags and re.search(r"Transformer（2）", tags)


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_an_answers_length_counts_what_was_written_not_the_spoiler_marks(core: Core, lang: str) -> None:
    ann = Transcript(core, lang=lang)
    [asked] = await ann.say("/quiz")
    assert text(await ann.say("||注意力||")) == t(
        lang, "answer_saved", title=question_of(asked).title, chars=count_of(lang, "characters", 3)
    )


async def test_the_console_heads_a_chinese_groups_daily_post_in_chinese(core: Core) -> None:
    admin = Transcript(core, user="ada", group=True, chat="console", admin=True, lang="zh", platform="console")
    await admin.say("/subscribe 09:00 UTC")
    core.clock.set(MONDAY_8AM.replace(hour=9))
    stdout = io.StringIO()
    console = ConsoleAdapter(io.StringIO(""), stdout, group=True)
    await Scheduler(core.store, core, {"console": console}, core.clock).sweep()
    await asyncio.wait_for(console.run(core), 20)
    assert stdout.getvalue().startswith(f"── {t('zh', 'console_daily_question')} ──\n❓ ")
    assert "daily question" not in stdout.getvalue()
