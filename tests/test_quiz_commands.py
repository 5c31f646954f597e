"""/skip that moves on, question numbers a user can see, and commands with nothing to do that say so."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.core.commands import Core
from bot.core.messages import count_of, t
from bot.core.store import Store
from tests.conftest import sql_rows
from tests.test_group_answers import monday_core
from tests.test_quiz import QUESTIONS, question_of
from tests.transcript import Transcript, text

langs = pytest.mark.parametrize("lang", ["en", "zh"])


@pytest.fixture
def core(store: Store) -> Core:
    return monday_core(store)


# --- /skip ------------------------------------------------------------------------------------------


async def test_skip_serves_every_other_question_before_any_again_even_a_due_review(core: Core) -> None:
    ann = Transcript(core)
    [reviewed] = await ann.say("/quiz self-attention")
    await ann.say("/answer tokens weigh each other")
    await ann.say("/grade again")  # due again soon: /quiz and /skip serve due reviews first
    core.clock.advance(timedelta(days=1))

    served = [question_of((await ann.say("/quiz"))[0]).id]  # not the question still open
    for _ in QUESTIONS[1:]:
        served.append(question_of((await ann.say("/skip"))[0]).id)
    assert served[1] == question_of(reviewed).id  # the due review first
    assert sorted(served) == sorted(q.id for q in QUESTIONS)  # then each once: the review not again
    [again] = await ann.say("/skip")  # every question skipped: the one skipped longest ago
    assert question_of(again).id == served[0]


async def test_skip_with_a_filter_stays_in_it_and_moves_on(core: Core) -> None:
    ann = Transcript(core)
    [first] = await ann.say("/quiz Transformer")
    [second] = await ann.say("/skip")
    [third] = await ann.say("/skip")
    ids = [question_of(reply).id for reply in (first, second, third)]
    assert set(ids[:2]) == {"attention", "layernorm"} and ids[2] == ids[0]


@langs
async def test_skip_when_only_one_question_matches_says_so(core: Core, lang: str) -> None:
    ann = Transcript(core, lang=lang)
    [only] = await ann.say("/quiz RL")
    posts = await sql_rows(core.store, "SELECT COUNT(*) FROM posts")
    assert text(await ann.say("/skip")) == t(lang, "skip_only_one", filter="RL")
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM posts") == posts  # nothing new served
    assert text(await ann.say("/answer a reward model")) == t(
        lang, "answer_saved", title=question_of(only).title, chars=count_of(lang, "characters", 14)
    )


# --- question numbers ---------------------------------------------------------------------------------


@langs
async def test_a_question_and_its_reveal_show_the_number_that_commands_take(core: Core, lang: str) -> None:
    ann = Transcript(core, lang=lang)
    [asked] = await ann.say("/quiz")
    number = t(lang, "post_number", number=asked.post_id)
    assert number in asked.text.splitlines()[0]  # on the heading line, beside the title
    await ann.say("/quiz")  # another question: the first one is now found by its number only
    [revealed] = await ann.say(f"/reveal {asked.post_id}")
    assert revealed.kind == "reveal" and number in revealed.text.splitlines()[0]
    assert question_of(asked).title in revealed.text
    [full] = await ann.say(f"/full {asked.post_id}")
    assert number in full.text.splitlines()[0]


@langs
async def test_help_says_where_a_questions_number_is_found(core: Core, lang: str) -> None:
    lines = text(await Transcript(core, lang=lang).say("/help")).splitlines()
    example = t(lang, "post_number", number=12)
    for command in ("/reveal", "/full"):
        [line] = [line for line in lines if line.startswith(f"`{command} ")]
        assert example in line, line


# --- nothing to do --------------------------------------------------------------------------------------


@langs
async def test_forgetme_with_no_data_says_there_is_nothing_to_delete(core: Core, lang: str) -> None:
    newcomer = Transcript(core, lang=lang)
    for command in ("/forgetme", "/forgetme yes"):
        [reply] = await newcomer.say(command)
        assert reply.text == t(lang, "forget_nothing") and not reply.buttons, command
    await newcomer.say("/quiz")  # kept from now on: the question served, and the name
    assert text(await newcomer.say("/forgetme")) == t(lang, "forget_confirm", answers=0, reviews=0)
    await newcomer.say("/forgetme yes ann")
    assert text(await newcomer.say("/forgetme")) == t(lang, "forget_nothing")


@langs
async def test_settings_role_outside_discord_says_it_has_no_effect_and_changes_nothing(
    core: Core, lang: str
) -> None:
    admin = Transcript(core, group=True, admin=True, lang=lang, platform="telegram")
    assert text(await admin.say("/settings role Study")) == t(lang, "role_discord_only")
    assert "Study" not in text(await admin.say("/settings"))
    on_discord = Transcript(core, group=True, admin=True, lang=lang, platform="discord")
    assert text(await on_discord.say("/settings role Study")) == t(
        lang, "setting_saved", key="role", value="Study"
    )


def test_the_catalogs_number_is_a_plain_word_not_a_hashtag() -> None:
    for lang in ("en", "zh"):
        assert not re.search(r"#\d", t(lang, "post_number", number=12))
