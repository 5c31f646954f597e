"""The engine, as conversations: what a user types, what the bot answers, what the database keeps.

Each conversation runs in English and in Simplified Chinese (the user's platform language).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.core import srs
from bot.core.bank import Bank, load
from bot.core.commands import COMMANDS, Core
from bot.core.commands.answering import ANSWER_LIMIT
from bot.core.commands.inbound import looks_hidden, split_command
from bot.core.commands.profile import TAGS_SHOWN, streaks
from bot.core.commands.texts import excerpt, some_tags
from bot.core.messages import count_of, format_day, format_days, format_when, join_list, t
from bot.core.model import ChatRef, Question, Reply, SentRef
from bot.core.ports import Adapter
from bot.core.render import escape
from bot.core.scheduler import Scheduler
from bot.core.store import Store, open_store
from tests.clock import FakeClock
from tests.conftest import sql_execute, sql_rows
from tests.transcript import Transcript, labels, text

ROOT = Path(__file__).resolve().parent.parent
MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LONG_ANSWER = "\n\n".join(
    [
        "LayerNorm normalises each token's features, so training is stable whatever the batch.",
        "```python\ndef layer_norm(x):\n\n    return (x - x.mean()) / x.std()\n```",
        "It also " + "keeps activations in range " * 40,
        "A last paragraph that the excerpt leaves out.",
    ]
)
QUESTIONS = (
    Question(
        id="attention",
        title="What is self-attention?",
        answer="Every token attends to every other token.\n\nMore detail follows.",
        summary="**Summary**: tokens weigh each other.",
        company="Acme",
        round="Round 1",
        tags=("Transformer", "Attention"),
    ),
    Question(
        id="rag",
        title="Explain RAG",
        answer="Retrieve, then generate.",
        summary="Retrieval first.",
        tags=("RAG",),
    ),
    Question(id="layernorm", title="Why LayerNorm?", answer=LONG_ANSWER, tags=("Transformer", "LayerNorm")),
    Question(
        id="ppo",
        title="PPO versus DPO",
        answer="PPO uses a reward model.",
        summary="DPO skips it.",
        company="Beta",
        tags=("RL",),
    ),
    Question(
        id="kv",
        title="What is the KV cache?",
        answer="Keys and values kept.",
        summary="Reuse K/V.",
        tags=("Inference",),
    ),
)
BANK = Bank(QUESTIONS)
TITLES = {q.title: q for q in QUESTIONS}
PLATFORM_LANG = {"en": "en-US", "zh": "zh-hans"}
langs = pytest.mark.parametrize("lang", ["en", "zh"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_8AM)


@pytest.fixture
def core(store: Store, clock: FakeClock) -> Core:
    return make_core(store, clock)


def make_core(store: Store, clock: FakeClock, bank: Bank = BANK, lang: str = "en") -> Core:
    return Core(store, bank, Settings(lang=lang), clock, rng=random.Random(7), fuzz=False)


def chat_for(core: Core, lang: str, **kw: object) -> Transcript:
    return Transcript(core, lang=PLATFORM_LANG[lang], **kw)


def question_of(reply: Reply) -> Question:
    assert reply.kind == "question" and reply.question is not None, reply
    return reply.question


class ChatsAdapter:
    """The scheduler's platform: sends land in the transcripts, as they would in a real chat."""

    platform = "test"

    def __init__(self, *chats: Transcript) -> None:
        self.chats = {chat.chat.key: chat for chat in chats}

    async def run(self, core: object) -> None:
        raise NotImplementedError

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        return SentRef(chat, await self.chats[chat.key].deliver(reply))


def scheduler(store: Store, core: Core, clock: FakeClock, *chats: Transcript) -> Scheduler:
    adapter: Adapter = ChatsAdapter(*chats)
    return Scheduler(store, core, {"test": adapter}, clock)


def newest(chat: Transcript, kind: str) -> Reply:
    return next(reply for _, reply in reversed(chat.log.replies) if reply.kind == kind)


# --- the daily loop, as a conversation ---------------------------------------------------------


async def stats_in_a_new_process(database: str, lang: str, now: str) -> str:
    """/stats as a fresh process sees it: its own connection, bank and core."""
    store = await open_store(database)
    try:
        core = make_core(store, FakeClock(datetime.fromisoformat(now)))
        return text(await chat_for(core, lang).say("/stats"))
    finally:
        await store.close()


@langs
async def test_quiz_answer_reveal_grade_stats_and_the_same_stats_from_a_new_process(
    lang: str, clock: FakeClock, database: Path | str
) -> None:
    store = await open_store(database)
    try:
        chat = chat_for(make_core(store, clock), lang)

        assert "/quiz" in text(await chat.say("/start"))

        [asked] = await chat.say("/quiz")
        question = question_of(asked)
        assert question.title in asked.text
        assert labels(asked) == [t(lang, "button_reveal"), t(lang, "button_skip")]

        assert text(await chat.say("/answer attention weighs tokens")) == t(
            lang, "answer_saved", title=question.title, chars=count_of(lang, "characters", len("attention weighs tokens"))
        )

        [revealed] = await chat.say("/reveal")
        assert revealed.kind == "reveal" and question.title in revealed.text
        assert (question.summary or excerpt(question.answer)[0]) in revealed.text
        assert t(lang, "answered_by", names="Ann") in revealed.text
        grade_labels = [t(lang, f"grade_{g}") for g in srs.GRADES]
        assert labels(revealed) == [t(lang, "button_full"), *grade_labels]

        [full] = await chat.press(t(lang, "button_full"))
        assert full.kind == "answer" and question.answer in full.text

        in_two_days = format_day(lang, date(2026, 3, 4), date(2026, 3, 2))
        graded = text(await chat.say("/grade good"))
        assert graded == t(lang, "graded", grade=t(lang, "grade_good"), next=in_two_days)

        stats = text(await chat.say("/stats"))
        assert t(lang, "stats_counts", answered=1, graded=1) in stats
        assert t(lang, "stats_streak", current=1, best=1) in stats
        assert t(lang, "stats_due", due=0) in stats
        assert escape(question.tags[0]) + " 1" in stats
    finally:
        await store.close()

    script = (
        "import asyncio, sys\n"
        "from tests.test_quiz import stats_in_a_new_process\n"
        "print(asyncio.run(stats_in_a_new_process(*sys.argv[1:])), end='')\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(database), lang, clock.now().isoformat(),
        cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0
    assert output.decode() == stats


@langs
async def test_a_group_day_post_answers_reveal_at_its_time_and_grades(
    lang: str, store: Store, clock: FakeClock
) -> None:
    core = make_core(store, clock)
    admin = chat_for(core, lang, user="ada", group=True, admin=True)
    bob = admin.member("bob")
    cat = admin.member("cat")
    daily = scheduler(store, core, clock, admin)

    first = format_when(lang, MONDAY_8AM.replace(hour=9), ZoneInfo("UTC"), MONDAY_8AM)  # today
    assert text(await admin.say("/subscribe 09:00 UTC")) == t(
        lang, "subscribed", time="09:00", zone="UTC", days=format_days(lang, "daily"), first=first
    )
    clock.set(MONDAY_8AM.replace(hour=9))
    await daily.sweep()
    post = newest(admin, "question")
    assert t(lang, "hint_group_spoiler") in post.text

    hidden = "||a hidden answer||"
    assert text(await bob.say(hidden, reply_to=post)) == t(
        lang, "answer_saved", title=question_of(post).title, chars=count_of(lang, "characters", len("a hidden answer"))
    )
    clear = await cat.say("an answer in the clear", reply_to=post)
    assert clear[-1].text == t(lang, "spoiler_reminder")
    assert await bob.say("just chatting") == []  # not a reply to a question: not for the bot

    refusal = text(await bob.say("/reveal"))
    assert refusal == t(
        lang,
        "reveal_not_yet",
        when=t(lang, "day_at", day=format_day(lang, date(2026, 3, 2), date(2026, 3, 2)), time="17:00"),
    )
    clock.set(MONDAY_8AM.replace(hour=17, minute=1))
    await daily.sweep()
    revealed = newest(admin, "reveal")
    assert t(lang, "answered_by", names=join_list(lang, ["Bob", "Cat"])) in revealed.text

    await bob.press(t(lang, "grade_good"))
    assert text(await admin.say(f"/grade easy {post.post_id}")) == t(lang, "grade_not_answered", name="Ada")
    assert await sql_rows(store, "SELECT user_key, grade FROM attempts WHERE grade IS NOT NULL") == [
        ("test:bob", "good")
    ]


@langs
async def test_an_admin_may_reveal_early_and_then_the_scheduled_reveal_is_not_sent(
    lang: str, store: Store, clock: FakeClock
) -> None:
    core = make_core(store, clock)
    admin = chat_for(core, lang, user="ada", group=True, admin=True)
    daily = scheduler(store, core, clock, admin)
    await admin.say("/subscribe 09:00 UTC")
    clock.set(MONDAY_8AM.replace(hour=9))
    await daily.sweep()

    [early] = await admin.say("/reveal")
    assert early.kind == "reveal"
    clock.set(MONDAY_8AM.replace(hour=18))
    await daily.sweep()
    assert [r.kind for _, r in admin.log.replies].count("reveal") == 1


# --- bad input -----------------------------------------------------------------------------------


@langs
async def test_bad_input_gets_a_clear_reply_and_the_chat_goes_on(lang: str, core: Core, store: Store) -> None:
    chat = chat_for(core, lang)

    bad = text(await chat.say("/subscribe 25:99 Mars/Phobos"))
    assert bad == t(lang, "bad_time", value="25:99") + "\n" + t(lang, "bad_zone", value="Mars/Phobos")
    assert await sql_rows(store, "SELECT subscribed FROM chats") in ([], [(0,)])

    assert text(await chat.say("/frobnicate now")) == t(lang, "unknown_command", command="/frobnicate")
    assert text(await chat.say("/answer")) == t(lang, "answer_usage")
    assert text(await chat.say("/answer   ")) == t(lang, "answer_usage")
    assert await sql_rows(store, "SELECT COUNT(*) FROM attempts") == [(0,)]

    [asked] = await chat.say("/quiz@dailyq_bot")
    long = "x" * (ANSWER_LIMIT - len(" the end")) + " the end"
    [ack] = await chat.say(f"/answer {long}")
    assert len(ack.text) < 300 and "the end" not in ack.text
    assert await sql_rows(store, "SELECT text FROM attempts") == [(long,)]  # kept whole

    assert t(lang, "subscribed", time="09:30", zone="Europe/Berlin", days="daily", first="")[:6] in text(
        await chat.say("/SUBSCRIBE 09:30 europe/berlin")
    )


@langs
async def test_metacharacters_are_stored_verbatim_and_shown_escaped(
    lang: str, core: Core, store: Store
) -> None:
    nasty = "Robert'); DROP TABLE attempts; -- <b>&amp;</b> *bold* _x_ [link](http://e.vil) `code` ||"
    chat = chat_for(core, lang, user="bobby", name=nasty)
    await chat.say("/quiz")
    await chat.say(nasty)

    assert await sql_rows(store, "SELECT text FROM attempts") == [(nasty,)]
    assert await sql_rows(store, "SELECT name FROM users") == [(nasty,)]
    [revealed] = await chat.say("/reveal")
    assert t(lang, "answered_by", names=escape(nasty)) in revealed.text
    assert text(await chat.say(f"/quiz {nasty}")).startswith(
        t(lang, "no_match", filter=escape(nasty), tags="")[:5]
    )
    assert escape(nasty) in text(await chat.say(f"/quiz {nasty}"))


# --- permissions ---------------------------------------------------------------------------------


@langs
async def test_in_a_group_only_admins_change_the_subscription_and_settings(
    lang: str, core: Core, store: Store
) -> None:
    admin = chat_for(core, lang, user="ada", group=True, admin=True)
    member = admin.member("bob")

    assert text(await member.say("/subscribe")) == t(lang, "admins_only", command="/subscribe")
    assert text(await member.say("/settings time 10:00")) == t(lang, "admins_only", command="/settings")
    assert text(await member.say("/unsubscribe")) == t(lang, "admins_only", command="/unsubscribe")
    assert await sql_rows(store, "SELECT COUNT(*) FROM chats WHERE subscribed") == [(0,)]
    assert t(lang, "settings_heading") in text(await member.say("/settings"))  # anyone may look

    assert text(await admin.say("/settings role Study")) == t(lang, "role_discord_only")
    on_discord = chat_for(core, lang, user="ada", group=True, admin=True, platform="discord")
    assert t(lang, "setting_saved", key="role", value="Study") == text(
        await on_discord.say("/settings role Study")
    )
    moderator = on_discord.member("mod", roles=("Study",))
    assert t(lang, "admins_only", command="/subscribe") != text(await moderator.say("/subscribe"))
    assert moderator.admin_checks == 0  # the role answered without asking the platform
    assert await sql_rows(store, "SELECT subscribed FROM chats") == [(1,)]


async def test_the_admin_question_is_asked_only_when_a_command_needs_it(core: Core) -> None:
    member = Transcript(core, group=True, admin=False)
    await member.say("/quiz")
    await member.say("/stats")
    assert member.admin_checks == 0


# --- answers ------------------------------------------------------------------------------------


async def test_a_new_answer_replaces_the_old_one_and_history_is_kept(core: Core, store: Store) -> None:
    chat = Transcript(core)
    [asked] = await chat.say("/quiz")
    await chat.say("first try")
    [ack] = await chat.say("/answer second try")
    assert ack.text == t("en", "answer_updated", title=question_of(asked).title, chars=count_of("en", "characters", len("second try")))
    assert await sql_rows(store, "SELECT text, current FROM attempts ORDER BY id") == [
        ("first try", 0),
        ("second try", 1),
    ]


async def test_answers_go_to_the_replied_question_else_the_newest_open_one(
    core: Core, store: Store, clock
) -> None:
    chat = Transcript(core)
    [first] = await chat.say("/quiz")
    [second] = await chat.say("/quiz")
    assert first.post_id != second.post_id
    await chat.say("about the first", reply_to=first)
    await chat.say("about the second")
    assert await sql_rows(store, "SELECT post_id, text FROM attempts ORDER BY id") == [
        (first.post_id, "about the first"),
        (second.post_id, "about the second"),
    ]


async def test_a_private_message_without_a_question_gets_a_hint(core: Core, store: Store) -> None:
    chat = Transcript(core)
    assert text(await chat.say("hello?")) == t("en", "private_hint")
    assert text(await chat.say("/answer 42")) == t("en", "nothing_to_answer")
    assert await sql_rows(store, "SELECT COUNT(*) FROM attempts") == [(0,)]


async def test_answering_a_groups_question_privately_through_the_deep_link(
    core: Core, store: Store, clock
) -> None:
    admin = Transcript(core, user="ada", group=True, chat="group", admin=True)
    daily = scheduler(store, core, clock, admin)
    await admin.say("/settings answers private")
    await admin.say("/subscribe 09:00 UTC")
    clock.set(MONDAY_8AM.replace(hour=9))
    await daily.sweep()
    post = newest(admin, "question")
    assert t("en", "hint_group_private") in post.text

    private = Transcript(core, user="bob", chat="bob-private")
    start = next(b.payload for b in post.buttons[0] if b.label == t("en", "button_answer_privately"))
    [shown] = await private.say(start)
    assert question_of(post).title in shown.text and shown.post_id is None
    await private.say("my private answer")
    assert await sql_rows(store, "SELECT chat_key, post_id, user_key FROM attempts") == [
        ("test:group", post.post_id, "test:bob")
    ]
    [revealed] = await admin.say(f"/reveal {post.post_id}")  # admin, before the reveal time
    assert t("en", "answered_by", names="Bob") in revealed.text


def test_hidden_means_every_visible_character_inside_spoilers() -> None:
    assert looks_hidden("||all of it||")
    assert looks_hidden("  ||one|| \n ||two||  ")
    assert not looks_hidden("||half|| and half")
    assert not looks_hidden("no spoilers")


# --- reveal -------------------------------------------------------------------------------------


async def test_reveal_without_summary_shows_the_answer_start_cut_at_a_paragraph(core: Core) -> None:
    chat = Transcript(core)
    [asked] = await chat.say("/quiz layernorm")
    assert question_of(asked).id == "layernorm"
    [revealed] = await chat.say("/reveal")
    assert "LayerNorm normalises" in revealed.text
    assert "return (x - x.mean())" in revealed.text  # the code block with a blank line stays whole
    assert "A last paragraph" not in revealed.text
    assert t("en", "reveal_more") in revealed.text


def test_excerpt_never_cuts_inside_a_code_fence() -> None:
    body, more = excerpt("intro\n\n```\na\n\nb\n```\n\ntail " + "x" * 100, limit=20)
    assert body == "intro\n\n```\na\n\nb\n```" and more
    assert excerpt("short", limit=20) == ("short", False)


async def test_reveal_and_full_of_unknown_posts(core: Core) -> None:
    chat = Transcript(core)
    assert text(await chat.say("/reveal")) == t("en", "nothing_to_reveal")
    assert text(await chat.say("/reveal 999")) == t("en", "no_such_post")
    assert text(await chat.say("/full x1")) == t("en", "bad_post_id", value="x1")


# --- grading and spaced repetition ----------------------------------------------------------------


async def test_regrading_replaces_the_grade_instead_of_reviewing_twice(
    core: Core, store: Store, clock
) -> None:
    chat = Transcript(core)
    [asked] = await chat.say("/quiz")
    await chat.say("an answer")
    await chat.say("/grade good")
    await chat.say("/grade easy")

    easy_once, due = srs.review(None, "easy", clock.now(), srs.make_scheduler(fuzz=False))
    assert await sql_rows(store, "SELECT card, due_at FROM reviews") == [(easy_once, due.isoformat())]
    assert await sql_rows(store, "SELECT grade FROM attempts") == [("easy",)]


async def test_grading_needs_an_answer_and_a_valid_grade(core: Core) -> None:
    chat = Transcript(core)
    await chat.say("/quiz")
    assert text(await chat.say("/grade good")) == t("en", "grade_not_answered", name="Ann")
    assert text(await chat.say("/grade brilliant")) == t("en", "grade_usage")
    assert text(await chat.say("/grade")) == t("en", "grade_usage")


async def test_quiz_gives_due_reviews_first_then_unseen_never_the_one_just_seen(core: Core, clock) -> None:
    chat = Transcript(core)
    [first] = await chat.say("/quiz")
    await chat.say("answer")
    await chat.say("/grade again")  # due again tomorrow
    seen = [question_of(first).id]
    for _ in range(len(QUESTIONS) - 1):
        [reply] = await chat.say("/quiz")
        seen.append(question_of(reply).id)
    assert sorted(seen) == sorted(q.id for q in QUESTIONS)  # every question once before any repeat

    clock.advance(timedelta(days=1))
    [due] = await chat.say("/quiz")
    assert question_of(due).id == seen[0]
    [after] = await chat.say("/quiz")
    assert question_of(after).id != seen[0]  # the review is still due, but was just seen


async def test_quiz_filters_by_tag_company_or_title_and_lists_tags_for_an_unknown_filter(core: Core) -> None:
    chat = Transcript(core)
    assert question_of((await chat.say("/quiz RL"))[0]).id == "ppo"
    assert question_of((await chat.say("/quiz acme"))[0]).id == "attention"
    assert question_of((await chat.say("/quiz KV cache"))[0]).id == "kv"
    unknown = text(await chat.say("/quiz quantum"))
    assert (
        unknown.startswith(t("en", "no_match", filter="quantum", tags="")[:10]) and "Transformer" in unknown
    )


async def test_skip_gives_another_question_in_private_but_not_on_a_groups_daily(
    core: Core, store, clock
) -> None:
    chat = Transcript(core)
    [first] = await chat.say("/quiz Transformer")
    [skipped] = await chat.press(t("en", "button_skip"))
    assert question_of(skipped).id != question_of(first).id
    assert set(question_of(skipped).tags) & {"Transformer"}  # the quiz's filter is kept

    group = Transcript(core, group=True, chat="group", admin=True)
    assert text(await group.say("/skip")) == t("en", "skip_where")
    await group.say("/quiz")
    assert question_of((await group.say("/skip"))[0])


# --- stats, streaks, top, tags ----------------------------------------------------------------------


def test_streaks_count_consecutive_local_days() -> None:
    days = [date(2026, 3, d) for d in (10, 9, 8, 1)] + [date(2026, 2, d) for d in (28, 27, 26)]
    assert streaks(days, date(2026, 3, 10)) == (3, 4)
    assert streaks(days, date(2026, 3, 11)) == (3, 4)  # yesterday's streak is alive until today ends
    assert streaks(days, date(2026, 3, 12)) == (0, 4)
    assert streaks([], date(2026, 3, 12)) == (0, 0)


async def test_streak_follows_the_chats_local_days(core: Core, clock) -> None:
    chat = Transcript(core)
    await chat.say("/settings zone Asia/Kolkata")
    for day in range(3):  # 20:00 UTC is 01:30 the next day in Kolkata
        clock.set(datetime(2026, 3, 2 + day, 20, 0, tzinfo=UTC))
        await chat.say("/quiz")
        await chat.say("answer")
    assert t("en", "stats_streak", current=3, best=3) in text(await chat.say("/stats"))
    clock.advance(timedelta(days=2))
    assert t("en", "stats_streak", current=0, best=3) in text(await chat.say("/stats"))


async def test_top_ranks_this_week_and_all_time_with_grades_breaking_ties(core: Core, clock) -> None:
    ann = Transcript(core, group=True, chat="group")
    bob = ann.member("bob")
    clock.set(datetime(2026, 2, 25, 12, tzinfo=UTC))  # last week
    for _ in range(2):
        await ann.say("/quiz")
        await ann.say("/answer old")
    clock.set(datetime(2026, 3, 3, 12, tzinfo=UTC))  # this week
    for who in (ann, bob):
        await who.say("/quiz")
        await who.say("/answer new")
    await bob.say("/grade good")

    week, all_time = text(await ann.say("/top")).split("\n\n")
    assert week.splitlines()[1:] == [
        t("en", "top_line", rank=1, name="Bob", answers=1, grades=1),
        t("en", "top_line", rank=2, name="Ann", answers=1, grades=0),
    ]
    assert all_time.splitlines()[1] == t("en", "top_line", rank=1, name="Ann", answers=3, grades=0)
    lonely = Transcript(core, chat="elsewhere")
    assert text(await lonely.say("/top")).count(t("en", "top_empty")) == 2


async def test_tags_lists_tags_and_companies_with_counts(core: Core) -> None:
    listing = text(await Transcript(core).say("/tags"))
    assert "Transformer (2)" in listing and "RAG (1)" in listing
    assert "Acme (1)" in listing and "Beta (1)" in listing


async def test_tags_shows_the_most_common_and_counts_the_rest(core: Core) -> None:
    many = [Question(id=f"q{i}", title=f"Q{i}?", answer="A.", tags=(f"tag{i:03}",)) for i in range(100)]
    core.set_bank(Bank([*many, Question(id="top", title="Top?", answer="A.", tags=("tag000", "common"))]))
    listing = text(await Transcript(core).say("/tags"))
    assert listing.startswith(t("en", "tags_heading", questions=101, tags=101))
    assert "tag000 (2)" in listing and "tag038 (1)" in listing and "tag039" not in listing
    assert t("en", "tags_more", count=101 - TAGS_SHOWN).strip() in listing


# --- subscription and settings ---------------------------------------------------------------------


@langs
async def test_subscribing_after_todays_time_means_tomorrow(
    lang: str, core: Core, store: Store, clock
) -> None:
    chat = chat_for(core, lang)
    clock.set(MONDAY_8AM.replace(hour=10))
    reply = text(await chat.say("/subscribe 09:00 Europe/Berlin"))
    tomorrow_9 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (CET)
    first = format_when(lang, tomorrow_9, ZoneInfo("Europe/Berlin"), clock.now())
    assert reply == t(lang, "subscribed", time="09:00", zone="Europe/Berlin", days=format_days(lang, "daily"), first=first)
    assert await sql_rows(store, "SELECT subscribed, schedule_from FROM chats") == [
        (1, "2026-03-02T10:00:00+00:00")
    ]

    clock.advance(timedelta(hours=1))
    await chat.say("/subscribe")  # nothing changes: the schedule's start stays
    assert await sql_rows(store, "SELECT schedule_from FROM chats") == [("2026-03-02T10:00:00+00:00",)]
    await chat.say("/settings days mon-fri")
    assert await sql_rows(store, "SELECT schedule_from FROM chats") == [("2026-03-02T11:00:00+00:00",)]
    assert text(await chat.say("/unsubscribe")) == t(lang, "unsubscribed")
    assert text(await chat.say("/unsubscribe")) == t(lang, "not_subscribed")


@langs
async def test_settings_show_validate_and_store(lang: str, core: Core, store: Store) -> None:
    chat = chat_for(core, lang)
    shown = text(await chat.say("/settings"))
    days, paused = format_days(lang, "daily"), t(lang, "setting_off")
    for key in ("time: 09:00", "zone: UTC", f"days: {days}", "reveal: 8h", "answers: spoiler", f"paused: {paused}"):
        assert key in shown
    assert t(lang, "status_not_subscribed") in shown

    assert text(await chat.say("/settings colour blue")) == t(
        lang,
        "unknown_setting",
        key="colour",
        keys=join_list(lang, ("time", "zone", "days", "reveal", "tags", "answers", "lang", "role", "paused")),
    )
    assert text(await chat.say("/settings reveal soon")) == t(lang, "bad_reveal", value="soon")
    assert text(await chat.say("/settings days someday")) == t(lang, "bad_days", value="someday")
    assert text(await chat.say("/settings tags Quantum")) == t(
        lang, "unknown_tags", tags="Quantum", known=some_tags(core, lang)
    )
    assert text(await chat.say("/settings time")) == t(
        lang, "setting_needs_value", key="time", example="18:30"
    )
    assert text(await chat.say("/settings tags rag, RL")) == t(
        lang, "setting_saved", key="tags", value="rag,RL"
    )
    assert text(await chat.say("/settings reveal 18:00")) == t(
        lang, "setting_saved", key="reveal", value="18:00"
    )
    assert "reveal: 18:00" in text(await chat.say("/settings"))


async def test_the_chat_language_setting_wins_over_the_platforms(core: Core) -> None:
    chat = Transcript(core, lang="en-GB")
    assert text(await chat.say("/settings lang zh")) == t("zh", "setting_saved", key="lang", value="zh")
    assert text(await chat.say("/nope")) == t("zh", "unknown_command", command="/nope")
    assert text(await chat.say("/settings lang auto")) == t(
        "en", "setting_saved", key="lang", value=t("en", "unset_lang")
    )
    assert text(await Transcript(core, chat="other", lang=None).say("/nope")) == t(
        "en", "unknown_command", command="/nope"
    )


async def test_the_configured_language_serves_chats_whose_platform_reports_none(store, clock) -> None:
    core = make_core(store, clock, lang="zh")
    assert text(await Transcript(core, lang=None).say("/nope")) == t("zh", "unknown_command", command="/nope")
    assert text(await Transcript(core, lang="fr").say("/nope")) == t("zh", "unknown_command", command="/nope")


# --- daily choice ------------------------------------------------------------------------------------


async def claim(store: Store, chat_key: str, question_id: str, cycle: int, day: int) -> None:
    """What the scheduler does with a choice: the claim row, already sent."""
    await sql_execute(
        store,
        "INSERT INTO posts (chat_key, question_id, kind, local_date, status, cycle, created_at)"
        " VALUES (?, ?, 'daily', ?, 'sent', ?, ?)",
        chat_key,
        question_id,
        date(2026, 4, day),
        cycle,
        datetime(2026, 4, day, 9, tzinfo=UTC),
    )


async def test_daily_questions_never_repeat_within_a_cycle_and_restarts_keep_the_order(
    core: Core, store: Store, clock
) -> None:
    await Transcript(core, chat="a").say("/subscribe")
    chosen: list[tuple[str, int]] = []
    for day in range(1, 2 * len(QUESTIONS) + 1):
        restarted = make_core(store, clock)  # a new process: the order is the same
        question, cycle = await restarted.choose_daily_question("test:a")
        assert (question, cycle) == await core.choose_daily_question("test:a")
        await claim(store, "test:a", question.id, cycle, day)
        chosen.append((question.id, cycle))
    first, second = chosen[: len(QUESTIONS)], chosen[len(QUESTIONS) :]
    assert sorted(q for q, _ in first) == sorted(q.id for q in QUESTIONS) and {c for _, c in first} == {0}
    assert sorted(q for q, _ in second) == sorted(q.id for q in QUESTIONS) and {c for _, c in second} == {1}
    assert first[-1][0] != second[0][0]  # a new cycle does not start with yesterday's question
    assert [q for q, _ in first] != [q for q, _ in second]  # each cycle is shuffled afresh


async def test_daily_questions_follow_the_chats_tags_and_differ_between_chats(
    core: Core, store: Store
) -> None:
    chat = Transcript(core, chat="a")
    await chat.say("/settings tags Transformer")
    picks = set()
    for day in range(1, 5):
        question, cycle = await core.choose_daily_question("test:a")
        await claim(store, "test:a", question.id, cycle, day)
        picks.add(question.id)
    assert picks == {"attention", "layernorm"}

    orders = set()
    for name in ("b", "c", "d", "e", "f", "g"):
        orders.add((await core.choose_daily_question(f"test:{name}"))[0].id)
    assert len(orders) > 1


# --- forgetme, help, commands ------------------------------------------------------------------------


@langs
async def test_forgetme_asks_first_then_deletes_the_users_data_everywhere(
    lang: str, core: Core, store: Store
) -> None:
    ann = chat_for(core, lang, group=True, chat="group")
    bob = ann.member("bob")
    private = chat_for(core, lang, chat="ann-private")
    for chat in (ann, private, bob):
        await chat.say("/quiz")
        await chat.say("/answer something")
        await chat.say("/grade good")

    [confirm] = await ann.say("/forgetme")
    assert confirm.text == t(lang, "forget_confirm", answers=2, reviews=2)
    assert text(await bob.press(t(lang, "button_forget"))) == t(lang, "forget_not_yours")
    assert text(await ann.press(t(lang, "button_forget"))) == t(lang, "forgotten")

    assert await sql_rows(store, "SELECT DISTINCT user_key FROM attempts") == [("test:bob",)]
    assert await sql_rows(store, "SELECT DISTINCT user_key FROM reviews") == [("test:bob",)]
    assert await sql_rows(store, "SELECT key FROM users") == [("test:bob",)]
    assert await sql_rows(store, "SELECT COUNT(*) FROM posts WHERE user_key = 'test:ann'") == [(0,)]


@langs
async def test_help_has_one_line_per_command_from_the_table(lang: str, core: Core) -> None:
    lines = text(await chat_for(core, lang).say("/help")).splitlines()
    assert lines[0] == t(lang, "help_header")
    assert len(lines) == len(COMMANDS) + 1
    for command, line in zip(COMMANDS, lines[1:], strict=True):
        assert line.startswith(f"`/{command.name}") and line.endswith(t(lang, command.help_key))
    grade, number = t(lang, "placeholder_grade"), t(lang, "placeholder_id")
    assert f"`/grade <{grade}> [{number}]`" in lines[1 + [c.name for c in COMMANDS].index("grade")]


def test_the_command_table_matches_the_design() -> None:
    names = [c.name for c in COMMANDS]
    assert names == [
        "start", "help", "quiz", "answer", "reveal", "full", "grade", "skip", "stats", "top", "tags",
        "subscribe", "unsubscribe", "settings", "forgetme", "reload",
    ]  # fmt: skip
    assert {c.name for c in COMMANDS if c.admin_only} == {"subscribe", "unsubscribe"}


def test_commands_are_split_from_their_bot_suffix_and_keep_their_lines() -> None:
    assert split_command("/Grade@dailyq_bot good 12") == ("grade", "good 12")
    assert split_command("/answer line one\nline two") == ("answer", "line one\nline two")
    assert split_command("/") == ("", "")


# --- the scheduler's side ------------------------------------------------------------------------------


async def test_a_moved_chat_keeps_its_subscription_posts_and_answers(core: Core, store: Store, clock) -> None:
    old = Transcript(core, chat="-100", group=True, admin=True)
    await old.say("/subscribe 09:00 UTC")
    await old.say("/quiz")
    await old.say("/answer before the move")

    await core.move_chat("test:-100", ChatRef("test", "-200"))
    new = Transcript(core, chat="-200", group=True, admin=True)
    assert await sql_rows(store, "SELECT key, subscribed FROM chats") == [("test:-200", 1)]
    assert await sql_rows(store, "SELECT chat_key FROM attempts") == [("test:-200",)]
    assert t("en", "top_line", rank=1, name="Ann", answers=1, grades=0) in text(await new.say("/top"))
    await core.unsubscribe("test:-200")
    assert await sql_rows(store, "SELECT subscribed FROM chats") == [(0,)]


async def test_a_question_dropped_from_a_reloaded_bank_is_reported_not_crashed(core: Core, clock) -> None:
    chat = Transcript(core)
    [asked] = await chat.say("/quiz")
    core.set_bank(Bank(q for q in QUESTIONS if q.id != question_of(asked).id))
    assert text(await chat.say("/reveal")) == t("en", "question_gone")
    assert text(await chat.say("late answer")) == t("en", "question_gone")


async def test_an_answer_in_a_thread_finds_the_question_posted_in_its_channel(
    core: Core, store: Store
) -> None:
    channel = Transcript(core, platform="discord", chat="c1", group=True)
    [asked] = await channel.say("/quiz")
    thread = Transcript(
        core, platform="discord", chat="c1", thread="t9", group=True, user="bob", _log=channel.log
    )
    await thread.say("||in the thread||", reply_to=asked)
    assert await sql_rows(store, "SELECT post_id, user_key, hidden FROM attempts") == [
        (asked.post_id, "discord:bob", 1)
    ]


async def test_a_daily_post_not_yet_sent_cannot_be_revealed(core: Core, store: Store, clock) -> None:
    admin = Transcript(core, group=True, chat="g", admin=True)
    await admin.say("/subscribe")
    question, cycle = await core.choose_daily_question("test:g")
    # The scheduler's claim, before its send.
    post_id = await store.claim_daily("test:g", question.id, date(2026, 3, 2), cycle, datetime(2026, 3, 2, 9, tzinfo=UTC))
    member = admin.member("bob")
    assert text(await member.say(f"/reveal {post_id}")) == t("en", "no_such_post")
    assert text(await member.say(f"/full {post_id}")) == t("en", "no_such_post")
    assert text(await member.say("/reveal")) == t("en", "nothing_to_reveal")  # a pending post is not open


async def test_only_owners_reload_and_a_broken_bank_keeps_the_current_one(tmp_path: Path) -> None:
    bank_file = tmp_path / "bank.md"
    bank_file.write_text("### Q. First?\nA.\n<mark>one</mark>\n", encoding="utf-8")
    settings = Settings(db=tmp_path / "db.sqlite3", content=bank_file, owners=("test:owner",))
    store = await open_store(settings.db)
    try:
        core = Core(store, load(bank_file).bank, settings, FakeClock(datetime(2026, 1, 5, 8, tzinfo=UTC)))
        owner = Transcript(core, user="owner")
        stranger = Transcript(core, user="stranger")

        bank_file.write_text("### Q. First?\nA.\n\n### Q. Second?\nB.\n", encoding="utf-8")
        assert "DAILYQ_OWNERS" in (await stranger.say("/reload"))[0].text
        assert len(core.bank) == 1
        assert "2" in (await owner.say("/reload"))[0].text
        assert len(core.bank) == 2

        bank_file.write_bytes(b"### Q. Third?\n\xff\xfe broken\n")
        kept = (await owner.say("/reload"))[0].text
        assert "bank.md:2" in kept.replace("\\", "")
        assert [q.title for q in core.bank.questions] == ["First?", "Second?"]
    finally:
        await store.close()
