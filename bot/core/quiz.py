"""The commands: Incoming → [Reply], driven by one explicit table; and what the scheduler asks of the core.

Every platform is a thin translation of what happens here. A button press arrives as an ordinary
Incoming whose text is the button's payload (a command line such as `/grade good 12`), so the
core never sees a platform callback. Handlers only return replies; nothing is sent from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import chain, repeat

from bot.config import Settings
from bot.core import answer_feedback, srs
from bot.core.bank import Bank, LoadResult, load
from bot.core.clock import Clock
from bot.core.feedback import Reviewer
from bot.core.messages import LANGUAGES, format_day, format_when, t
from bot.core.model import Button, ChatRef, Incoming, Question, Reply, SentRef
from bot.core.render import escape
from bot.core.schedule import KEYS as SETTING_KEYS
from bot.core.schedule import ChatSettings, next_post, post_instant
from bot.core.store import ChatRow, OpenQuestion, Post, Store

# How much of an answer the reveal shows when the bank gives no summary (cut at a paragraph).
EXCERPT_CHARS = 600
LEADERBOARD_SIZE = 10
STATS_TAGS = 10
# /quiz looks at this many due reviews for one that fits the filter before taking new questions.
DUE_LOOKAHEAD = 20
# Random candidates checked against what the user has seen before looking at the whole pool.
RANDOM_PROBES = 16


@dataclass(frozen=True)
class Option:
    name: str
    required: bool
    help: str  # a message key: t(lang, option.help)


@dataclass(frozen=True)
class Command:
    """One row of the command table; `help_key` is the message key of its one-line help."""

    name: str
    options: tuple[Option, ...]
    admin_only: bool  # in groups: only admins (and the chat's `role`) may use it
    help_key: str
    handler: Callable[[Core, Call], Awaitable[list[Reply]]] = field(repr=False, compare=False)


@dataclass
class Call:
    """One command or message being handled, with what every handler needs to know about it."""

    incoming: Incoming
    args: str
    now: datetime
    chat: ChatRow | None
    settings: ChatSettings
    lang: str
    _admin: bool | None = None

    @property
    def user(self) -> str:
        return self.incoming.user_key

    @property
    def in_group(self) -> bool:
        return self.incoming.is_group

    async def is_admin(self) -> bool:
        """In a private chat the user is its admin; in a group, the platform says, or the chat's role."""
        if self._admin is None:
            role = self.settings.role
            self._admin = (
                not self.in_group
                or (role is not None and role in self.incoming.roles)
                or await self.incoming.is_admin()
            )
        return self._admin

    def today(self) -> date:
        return self.now.astimezone(self.settings.zone_info).date()


def platform_language(reported: str | None) -> str | None:
    """The catalog language for a platform's language code ('zh-hans' → zh), if we have it."""
    code = (reported or "").casefold()
    return next((lang for lang in LANGUAGES if code.startswith(lang)), None)


def split_command(text: str) -> tuple[str, str]:
    """'/Grade@dailyq_bot good 12' → ('grade', 'good 12'); the arguments keep their inner lines."""
    match = re.match(r"/(\S*)\s*(.*)", text, re.DOTALL)
    assert match, text
    return match[1].partition("@")[0].casefold(), match[2].strip()


def looks_hidden(text: str) -> bool:
    """Whether every non-whitespace character is inside ||…|| (as typed on Discord or in the console)."""
    outside = re.sub(r"\|\|.+?\|\|", "", text, flags=re.DOTALL)
    return "||" in text and not outside.strip()


def excerpt(markdown: str, limit: int = EXCERPT_CHARS) -> tuple[str, bool]:
    """The answer's start, whole blocks up to about `limit` characters, never cut inside a code fence.

    Returns the text and whether anything was left out.
    """
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in markdown.strip().splitlines():
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
        if not line.strip() and fence is None:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    taken: list[str] = []
    size = 0
    for block in blocks:
        if taken and size + len(block) > limit:
            break
        taken.append(block)
        size += len(block) + 2
    return "\n\n".join(taken), len(taken) < len(blocks)


def streaks(days: Sequence[date], today: date) -> tuple[int, int]:
    """(current, best) runs of consecutive days, from the days with an answer, newest first.

    The current run survives until the end of the day after its last day.
    """
    ordinals = [day.toordinal() for day in days]
    runs: list[int] = []  # lengths, newest run first
    for newer, day in zip([0, *ordinals], ordinals, strict=False):
        if newer - day == 1:
            runs[-1] += 1
        else:
            runs.append(1)
    alive = bool(ordinals) and ordinals[0] >= today.toordinal() - 1
    return (runs[0] if alive else 0), max(runs, default=0)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def _pool_for_tags(bank: Bank, tags: str | None) -> Sequence[Question]:
    """Questions having one of the comma-separated tags or companies; the whole bank for none."""
    wanted = {tag.strip().casefold() for tag in (tags or "").split(",") if tag.strip()}
    if not wanted:
        return bank.questions
    return [
        q
        for q in bank.questions
        if (q.company or "").casefold() in wanted or any(tag.casefold() in wanted for tag in q.tags)
    ]


def _known_labels(bank: Bank) -> set[str]:
    return {tag.casefold() for tag in bank.tag_counts()} | {c.casefold() for c in bank.company_counts()}


class Core:
    def __init__(
        self,
        store: Store,
        bank: Bank,
        settings: Settings,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        fuzz: bool = True,
        reviewer: Reviewer | None = None,
    ) -> None:
        self.store = store
        self.bank = bank
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self._srs = srs.make_scheduler(fuzz=fuzz)
        # Feedback exists only with a model to ask: its command, setting and buttons otherwise never show.
        self.reviewer = reviewer
        self.commands = commands_with(feedback=reviewer is not None)
        self.commands_by_name = {command.name: command for command in self.commands}
        self._setting_keys = tuple(key for key in SETTING_KEYS if reviewer is not None or key != "feedback")
        self.set_bank(bank)

    def set_bank(self, bank: Bank) -> None:
        """Swap in a re-parsed bank; progress survives because question ids are stable."""
        self._question_hashes = {q.id: _hash64(q.id) for q in bank.questions}
        self._question_by_hash = {
            h: bank.by_id[question_id] for question_id, h in self._question_hashes.items()
        }
        self._tags_by_id = {q.id: q.tags for q in bank.questions}
        self.bank = bank

    async def reload_bank(self) -> LoadResult:
        """Re-parse the bank; a bank with errors (or no questions) leaves the current one in place."""
        loaded = await asyncio.to_thread(load, self.settings.content)
        if not loaded.errors and loaded.bank.questions:
            self.set_bank(loaded.bank)
        return loaded

    # --- the adapter-facing interface ----------------------------------------------------

    async def handle(self, incoming: Incoming) -> list[Reply]:
        incoming = replace(incoming, text=_valid_unicode(incoming.text), user_name=_valid_unicode(incoming.user_name))
        call = await self._call(incoming)
        text = incoming.text.strip()
        if not text.startswith("/"):
            return await self._plain_text(call, text)
        name, call.args = split_command(text)
        command = self.commands_by_name.get(name)
        if command is None:
            return [Reply(t(call.lang, "unknown_command", command=escape(f"/{name}")))]
        if command.admin_only and not await call.is_admin():
            return [Reply(t(call.lang, "admins_only", command=f"/{name}"))]
        return await command.handler(self, call)

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        """Remember where a question landed, so that a reply to that message answers it."""
        if reply.kind == "question" and reply.post_id is not None:
            await self.store.set_message_id(reply.post_id, ref.message_id)

    # --- the scheduler-facing interface --------------------------------------------------

    async def chat_settings(self, chat_key: str) -> ChatSettings:
        return self._settings_of(await self.store.chat(chat_key))

    async def choose_daily_question(self, chat_key: str) -> tuple[Question, int]:
        """The chat's next daily question and its cycle; read only (the scheduler claims it).

        No question repeats within a cycle (a pass through the bank, or through the chat's tags);
        the order within a cycle is a fixed shuffle of (chat, cycle), so restarts don't change it.
        """
        settings = await self.chat_settings(chat_key)
        pool = _pool_for_tags(self.bank, settings.tags) or self.bank.questions
        cycle, used, last = await self.store.daily_cycle(chat_key)
        hashes = self._question_hashes
        remaining = [hashes[q.id] for q in pool if q.id not in used]
        if not remaining:
            cycle += 1
            remaining = [hashes[q.id] for q in pool if q.id != last] or [hashes[q.id] for q in pool]
        # The cycle's order: questions sorted by (question hash XOR (chat, cycle) hash), a keyed
        # shuffle that restarts and reloads don't change. Hashes are computed once per bank and
        # the XOR runs in C, so a choice over 10,000 questions takes about a millisecond.
        key = _hash64(f"{chat_key}|{cycle}")
        return self._question_by_hash[min(map(key.__xor__, remaining)) ^ key], cycle

    async def daily_post_reply(self, post_id: int) -> Reply:
        post = await self._post(post_id)
        chat = await self.store.chat(post.chat_key)
        settings = self._settings_of(chat)
        lang = self._chat_language(settings, chat, None)
        return self._question_reply(
            lang, post, ChatRef.from_key(post.chat_key), chat.is_group if chat else False, settings
        )

    async def reveal_replies(self, post_id: int) -> list[Reply]:
        post = await self._post(post_id)
        chat = await self.store.chat(post.chat_key)
        lang = self._chat_language(self._settings_of(chat), chat, None)
        return [await self._reveal_reply(lang, post, ChatRef.from_key(post.chat_key), quote=True)]

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None:
        await self.store.move_chat(old_key, new_chat)

    async def unsubscribe(self, chat_key: str) -> None:
        await self.store.unsubscribe(chat_key)

    # --- context -------------------------------------------------------------------------

    async def _call(self, incoming: Incoming) -> Call:
        chat = await self.store.chat(incoming.chat.key)
        settings = self._settings_of(chat)
        lang = self._chat_language(settings, chat, incoming.lang)
        return Call(incoming, "", self.clock.now(), chat, settings, lang)

    def _settings_of(self, chat: ChatRow | None) -> ChatSettings:
        if chat is None:
            return ChatSettings.default(self.settings)
        return ChatSettings.from_json(chat.settings, self.settings)

    def _chat_language(self, settings: ChatSettings, chat: ChatRow | None, reported: str | None) -> str:
        return (
            settings.lang
            or platform_language(reported)
            or platform_language(chat.platform_lang if chat else None)
            or platform_language(self.settings.lang)
            or LANGUAGES[0]
        )

    async def _post(self, post_id: int) -> Post:
        post = await self.store.post(post_id)
        if post is None:
            raise LookupError(f"no post {post_id}")
        return post

    # --- finding the question a message is about ----------------------------------------

    async def _replied_post(self, call: Call) -> Post | None:
        reply_to = call.incoming.reply_to
        if reply_to is None:
            return None
        chat = call.incoming.chat
        keys = (chat.key, ChatRef(chat.platform, chat.chat_id).key) if chat.thread_id else (chat.key,)
        return await self.store.post_by_message(keys, reply_to)

    async def _current_post(self, call: Call) -> Post | None:
        """The question a bare /answer or /reveal is about: the one replied to, else the newer of the
        user's open question in this chat and the chat's latest daily post."""
        replied = await self._replied_post(call)
        return replied or await self.store.current_post(call.user, call.incoming.chat.key)

    async def _post_by_argument(self, argument: str) -> Post | str:
        """The post named by an id argument, or a message key saying why there is none."""
        if not POST_ID.fullmatch(argument):
            return "bad_post_id"
        post = await self.store.post(int(argument))
        return post if post is not None else "no_such_post"

    # --- handlers -------------------------------------------------------------------------

    async def _start(self, call: Call) -> list[Reply]:
        deep_link = re.fullmatch(rf"answer-({POST_ID.pattern})", call.args)
        if deep_link and not call.in_group:
            return await self._answer_privately(call, int(deep_link[1]))
        feedback_link = re.fullmatch(rf"feedback-({POST_ID.pattern})", call.args)
        if feedback_link and self.reviewer is not None:
            return await answer_feedback.feedback(self, replace(call, args=feedback_link[1]))
        return [Reply(self._with_feedback_notice(call, t(call.lang, "welcome", bot="dailyq")))]

    def _with_feedback_notice(self, call: Call, text: str) -> str:
        """/start and /help in a chat with feedback on say where answers go when feedback is asked for."""
        if self.reviewer is None or not call.settings.feedback:
            return text
        return text + "\n\n" + t(call.lang, "feedback_notice", model=escape(self.reviewer.model))

    async def _answer_privately(self, call: Call, post_id: int) -> list[Reply]:
        post = await self.store.post(post_id)
        question = self.bank.get(post.question_id) if post else None
        if post is None or question is None:
            return [Reply(t(call.lang, "no_such_post"))]
        incoming = call.incoming
        await self.store.open_post(
            incoming.chat, incoming.is_group, call.user, incoming.user_name, post.id, call.now
        )
        return [Reply(self._question_text(call.lang, question) + "\n\n" + t(call.lang, "answer_here"))]

    async def _help(self, call: Call) -> list[Reply]:
        lines = [t(call.lang, "help_header")]
        for command in self.commands:
            usage = " ".join(
                [f"/{command.name}"]
                + [f"<{o.name}>" if o.required else f"[{o.name}]" for o in command.options]
            )
            lines.append(f"`{usage}` — {t(call.lang, command.help_key)}")
        return [Reply(self._with_feedback_notice(call, "\n".join(lines)))]

    async def _quiz(self, call: Call) -> list[Reply]:
        return await self._serve_quiz(
            call, call.args, await self.store.open_question(call.user, call.incoming.chat.key)
        )

    async def _skip(self, call: Call) -> list[Reply]:
        opened = await self.store.open_question(call.user, call.incoming.chat.key)
        own_quiz = opened is not None and opened.post.kind == "quiz" and opened.post.user_key == call.user
        if call.in_group and not own_quiz:
            return [Reply(t(call.lang, "skip_where"))]
        return await self._serve_quiz(call, opened.filter if opened else "", opened)

    async def _serve_quiz(self, call: Call, quiz_filter: str, current: OpenQuestion | None) -> list[Reply]:
        pool = self.bank.matching(quiz_filter) if quiz_filter else self.bank.questions
        if not pool:
            return [Reply(t(call.lang, "no_match", filter=escape(quiz_filter), tags=self._some_tags()))]
        just_seen = current.post.question_id if current else None
        question = await self._pick_for_user(call, pool, bool(quiz_filter), just_seen)
        incoming = call.incoming
        post = await self.store.add_quiz(
            incoming.chat,
            incoming.is_group,
            call.user,
            incoming.user_name,
            question.id,
            quiz_filter,
            call.now,
        )
        return [self._question_reply(call.lang, post, None, call.in_group, call.settings)]

    async def _pick_for_user(
        self, call: Call, pool: Sequence[Question], filtered: bool, just_seen: str | None
    ) -> Question:
        """Due reviews first, then questions the user has not seen; never the one just seen here."""
        in_pool: Callable[[str], bool] = (
            {q.id for q in pool}.__contains__ if filtered else self.bank.by_id.__contains__
        )
        for question_id in await self.store.due_reviews(call.user, call.now, DUE_LOOKAHEAD):
            if question_id != just_seen and in_pool(question_id):
                return self.bank.by_id[question_id]
        # Usually most of the pool is unseen: ask about a few random candidates at once rather
        # than loading everything the user has ever seen.
        candidates = self.rng.sample(pool, min(len(pool), RANDOM_PROBES))
        seen = await self.store.seen_questions(call.user, among=[q.id for q in candidates])
        fresh = [q for q in candidates if q.id not in seen and q.id != just_seen]
        if fresh:
            return fresh[0]
        seen = await self.store.seen_questions(call.user)
        unseen = [q for q in pool if q.id not in seen and q.id != just_seen]
        if unseen:
            return self.rng.choice(unseen)
        # Everything seen: start over, anything but the question just seen.
        return self.rng.choice([q for q in pool if q.id != just_seen] or pool)

    async def _answer(self, call: Call) -> list[Reply]:
        if not call.args:
            return [Reply(t(call.lang, "answer_usage"))]
        post = await self._current_post(call)
        if post is None:
            return [Reply(t(call.lang, "nothing_to_answer"))]
        return await self._save_answer(call, post, call.args)

    async def _plain_text(self, call: Call, text: str) -> list[Reply]:
        """A message that is not a command answers the question it replies to, or, in a private
        chat, the open question. Anything else in a group is conversation, not for us."""
        if call.in_group:
            post = await self._replied_post(call)
            if post is None:
                return []
        else:
            post = await self._current_post(call)
            if post is None:
                return [Reply(t(call.lang, "private_hint"))]
        return await self._save_answer(call, post, text) if text else []

    async def _save_answer(self, call: Call, post: Post, text: str) -> list[Reply]:
        question = self.bank.get(post.question_id)
        if question is None:
            return [Reply(t(call.lang, "question_gone"))]
        post_chat = (
            call.chat if post.chat_key == call.incoming.chat.key else await self.store.chat(post.chat_key)
        )
        zone = self._settings_of(post_chat).zone_info
        hidden = call.incoming.hidden or looks_hidden(text)
        replaced = await self.store.add_attempt(
            post,
            call.user,
            call.incoming.user_name,
            text,
            hidden,
            call.now.astimezone(zone).date().isoformat(),
            call.now,
        )
        key = "answer_updated" if replaced else "answer_saved"
        replies = [
            Reply(
                t(call.lang, key, title=question.title, chars=len(text)),
                reply_to=call.incoming.message_id,
            )
        ]
        if call.in_group and not hidden:
            reminder = "private_reminder" if call.settings.answers == "private" else "spoiler_reminder"
            replies.append(Reply(t(call.lang, reminder)))
        return replies

    async def _reveal(self, call: Call) -> list[Reply]:
        post, refusal = await self._revealable_post(call)
        if post is None:
            return [Reply(refusal)]
        if post.kind == "daily" and post.chat_key == call.incoming.chat.key:
            # The chat has seen the answer: the scheduled reveal would only repeat it.
            await self.store.mark_revealed(post.id, call.now)
        return [
            await self._reveal_reply(call.lang, post, None, quote=post.chat_key == call.incoming.chat.key)
        ]

    async def _full(self, call: Call) -> list[Reply]:
        post, refusal = await self._revealable_post(call)
        if post is None:
            return [Reply(refusal)]
        question = self.bank.get(post.question_id)
        if question is None:
            return [Reply(t(call.lang, "question_gone"))]
        heading = t(call.lang, "full_answer_heading", title=question.title)
        return [Reply(f"{heading}\n\n{question.answer}", kind="answer", question=question, post_id=post.id)]

    async def _revealable_post(self, call: Call) -> tuple[Post | None, str]:
        """The post /reveal or /full is about if this user may see its answer now, else why not."""
        if call.args:
            found = await self._post_by_argument(call.args.split()[0])
            if isinstance(found, str):
                return None, t(call.lang, found)
            post = found
        else:
            post = await self._current_post(call)
            if post is None:
                return None, t(call.lang, "nothing_to_reveal")
        if post.kind != "daily" or post.revealed_at is not None:
            return post, ""
        if post.reveal_due_at is None:  # claimed by the scheduler but not sent yet
            return None, t(call.lang, "no_such_post")
        if call.now >= post.reveal_due_at:
            return post, ""
        here = post.chat_key == call.incoming.chat.key
        post_chat = call.chat if here else await self.store.chat(post.chat_key)
        if post_chat is None or not post_chat.is_group or (here and await call.is_admin()):
            return post, ""
        settings = self._settings_of(post_chat)
        when = format_when(call.lang, post.reveal_due_at, settings.zone_info, call.now)
        return None, t(call.lang, "reveal_not_yet", when=when)

    async def _reveal_reply(self, lang: str, post: Post, chat: ChatRef | None, *, quote: bool) -> Reply:
        question = self.bank.get(post.question_id)
        if question is None:
            return Reply(t(lang, "question_gone"), chat=chat)
        if question.summary:
            body, more = question.summary, True
        else:
            body, more = excerpt(question.answer)
        names = await self.store.answerers(post.id)
        lines = [t(lang, "reveal_heading", title=question.title), "", body]
        if more:
            lines += ["", t(lang, "reveal_more")]
        lines += [
            "",
            t(lang, "answered_by", names=", ".join(escape(n) for n in names))
            if names
            else t(lang, "answered_by_nobody"),
        ]
        buttons: tuple[tuple[Button, ...], ...] = (
            (Button(t(lang, "button_full"), f"/full {post.id}"),),
            answer_feedback.grade_buttons(lang, post.id),
        )
        if self.reviewer is not None:
            post_chat = await self.store.chat(post.chat_key)
            if self._settings_of(post_chat).feedback:
                in_group = post_chat is not None and post_chat.is_group
                buttons += ((answer_feedback.feedback_button(lang, post.id, in_group),),)
        # Quoting the question links the reveal to it (and, on Discord, finds the post's thread
        # after a restart); a reveal asked for from another chat has nothing there to quote.
        return Reply(
            "\n".join(lines),
            buttons=buttons,
            chat=chat,
            kind="reveal",
            question=question,
            post_id=post.id,
            reply_to=post.message_id if quote else None,
        )

    async def _grade(self, call: Call) -> list[Reply]:
        words = call.args.split()
        grade = words[0].casefold() if words else ""
        if grade not in srs.GRADES or len(words) > 2:
            return [Reply(t(call.lang, "grade_usage"))]
        if len(words) == 2:
            found = await self._post_by_argument(words[1])
            if isinstance(found, str):
                return [Reply(t(call.lang, found))]
            post: Post | None = found
        else:
            post = await self._current_post(call)
        if post is None:
            return [Reply(t(call.lang, "nothing_to_grade"))]
        answered = await self.store.attempt(post.id, call.user)
        if answered is None:
            return [Reply(t(call.lang, "grade_not_answered", name=escape(call.incoming.user_name)))]
        attempt, review = answered
        # A re-grade of the same post starts again from the card before its first grade, so
        # the review is applied once; a newer review of the question (another post) wins.
        if review is not None and review.post_id == post.id:
            before = review.previous_card
        elif attempt.grade is not None:
            return [Reply(t(call.lang, "grade_superseded"))]
        else:
            before = review.card if review else None
        card, due = srs.review(before, grade, call.now, self._srs)
        await self.store.grade(attempt, call.user, grade, before, card, due, call.now)
        zone = call.settings.zone_info
        return [
            Reply(
                t(
                    call.lang,
                    "graded",
                    grade=t(call.lang, f"grade_{grade}"),
                    next=format_day(call.lang, due.astimezone(zone).date(), call.today()),
                )
            )
        ]

    async def _stats(self, call: Call) -> list[Reply]:
        stats = await self.store.user_stats(call.user, call.now)
        current, best = streaks(stats.days, call.today())
        by_tag = Counter(chain.from_iterable(map(self._tags_by_id.get, stats.answered, repeat(()))))
        lines = [
            t(call.lang, "stats_heading", name=escape(call.incoming.user_name)),
            t(call.lang, "stats_counts", answered=len(stats.answered), graded=stats.graded),
            t(call.lang, "stats_streak", current=current, best=best),
            t(call.lang, "stats_due", due=stats.due),
        ]
        if by_tag:
            top_tags = sorted(by_tag.items(), key=lambda item: (-item[1], item[0]))[:STATS_TAGS]
            tags = ", ".join(f"{escape(tag)} {n}" for tag, n in top_tags)
            lines.append(t(call.lang, "stats_tags", tags=tags))
        return [Reply("\n".join(lines))]

    async def _top(self, call: Call) -> list[Reply]:
        today = call.today()
        monday = post_instant(today - timedelta(days=today.weekday()), time(0, 0), call.settings.zone_info)
        sections = []
        for heading, since in (("top_week", monday), ("top_all", None)):
            standings = await self.store.leaderboard(call.incoming.chat.key, since, LEADERBOARD_SIZE)
            lines = [t(call.lang, heading)]
            lines += [
                t(call.lang, "top_line", rank=rank, name=escape(s.name), answers=s.answers, grades=s.grades)
                for rank, s in enumerate(standings, 1)
            ] or [t(call.lang, "top_empty")]
            sections.append("\n".join(lines))
        return [Reply("\n\n".join(sections))]

    async def _tags(self, call: Call) -> list[Reply]:
        def listing(counts: Counter[str]) -> str:
            ranked = sorted(counts.items(), key=lambda i: (-i[1], i[0]))
            shown = ", ".join(f"{escape(name)} ({n})" for name, n in ranked[:TAGS_SHOWN])
            rest = len(ranked) - TAGS_SHOWN
            return shown + (t(call.lang, "tags_more", count=rest) if rest > 0 else "")

        tags, companies = self.bank.tag_counts(), self.bank.company_counts()
        lines = [t(call.lang, "tags_heading", questions=len(self.bank), tags=len(tags))]
        lines.append(listing(tags) if tags else t(call.lang, "tags_none"))
        if companies:
            lines += ["", t(call.lang, "companies_heading", companies=len(companies)), listing(companies)]
        return [Reply("\n".join(lines))]

    async def _subscribe(self, call: Call) -> list[Reply]:
        words = call.args.split()
        if len(words) > 2:
            return [Reply(t(call.lang, "subscribe_usage"))]
        settings = call.settings
        problems: list[str] = []
        for word in words:
            key = "time" if word[0].isdigit() else "zone"  # "25:99" is a bad time, not a bad zone
            try:
                settings = settings.updated(key, word)
            except ValueError:
                problems.append(t(call.lang, f"bad_{key}", value=escape(word)))
        if problems:
            return [Reply("\n".join(problems))]
        settings = replace(settings, paused=False)
        changed = (
            call.chat is None
            or not call.chat.subscribed
            or (settings.time, settings.zone, settings.days)
            != (call.settings.time, call.settings.zone, call.settings.days)
        )
        await self.store.save_chat(
            call.incoming.chat,
            call.in_group,
            settings.to_json(),
            call.now,
            subscribed=True,
            reschedule=changed,
            platform_lang=platform_language(call.incoming.lang),
        )
        first = next_post(settings, call.now)
        return [
            Reply(
                t(
                    call.lang,
                    "subscribed",
                    time=settings.time,
                    zone=escape(settings.zone),
                    days=settings.days,
                    first=format_when(call.lang, first, settings.zone_info, call.now),
                )
            )
        ]

    async def _unsubscribe(self, call: Call) -> list[Reply]:
        stopped = await self.store.unsubscribe(call.incoming.chat.key)
        return [Reply(t(call.lang, "unsubscribed" if stopped else "not_subscribed"))]

    async def _settings(self, call: Call) -> list[Reply]:
        if not call.args:
            return [Reply(self._settings_text(call.lang, call.settings, call.chat, call.now))]
        key, _, value = call.args.partition(" ")
        key, value = key.casefold(), value.strip()
        if key not in self._setting_keys:
            return [Reply(t(call.lang, "unknown_setting", key=escape(key), keys=", ".join(self._setting_keys)))]
        if not value:
            return [
                Reply(t(call.lang, "setting_needs_value", key=key, example=t(call.lang, f"example_{key}")))
            ]
        if not await call.is_admin():
            return [Reply(t(call.lang, "admins_only", command="/settings"))]
        try:
            settings = call.settings.updated(key, value)
        except ValueError:
            return [Reply(t(call.lang, f"bad_{key}", value=escape(value)))]
        if key == "tags" and settings.tags:
            unknown = [
                tag for tag in settings.tags.split(",") if tag.casefold() not in _known_labels(self.bank)
            ]
            if unknown:
                return [
                    Reply(
                        t(call.lang, "unknown_tags", tags=escape(", ".join(unknown)), known=self._some_tags())
                    )
                ]
        schedule_changed = key in ("time", "zone", "days") and settings != call.settings
        await self.store.save_chat(
            call.incoming.chat,
            call.in_group,
            settings.to_json(),
            call.now,
            reschedule=schedule_changed,
            platform_lang=platform_language(call.incoming.lang),
        )
        lang = self._chat_language(settings, call.chat, call.incoming.lang)
        shown = getattr(settings, key)
        lines = [t(lang, "setting_saved", key=key, value=self._setting_value(lang, key, shown))]
        if key == "feedback" and settings.feedback and self.reviewer is not None:
            lines.append(t(lang, "feedback_turned_on", model=escape(self.reviewer.model)))
        if call.chat is not None and call.chat.subscribed and not settings.paused:
            lines.append(
                t(
                    lang,
                    "next_post",
                    when=format_when(lang, next_post(settings, call.now), settings.zone_info, call.now),
                )
            )
        return [Reply("\n".join(lines))]

    def _settings_text(self, lang: str, settings: ChatSettings, chat: ChatRow | None, now: datetime) -> str:
        lines = [t(lang, "settings_heading")]
        for key in self._setting_keys:
            lines.append(f"{key}: {self._setting_value(lang, key, getattr(settings, key))}")
        lines.append("")
        if chat is not None and chat.subscribed:
            if settings.paused:
                lines.append(t(lang, "status_paused"))
            else:
                when = format_when(lang, next_post(settings, now), settings.zone_info, now)
                lines.append(t(lang, "status_subscribed", when=when))
        else:
            lines.append(t(lang, "status_not_subscribed"))
        lines.append(t(lang, "settings_how"))
        return "\n".join(lines)

    def _setting_value(self, lang: str, key: str, value: object) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if value is None:
            return t(lang, f"unset_{key}")
        return escape(str(value))

    async def _reload(self, call: Call) -> list[Reply]:
        if call.user not in self.settings.owners:
            return [Reply(t(call.lang, "owners_only"))]
        loaded = await self.reload_bank()
        if self.bank is not loaded.bank:
            lines = [t(call.lang, "reload_kept", questions=len(self.bank))]
            lines += [f"• {escape(f'{p.file}:{p.line}: {p.message}')}" for p in loaded.errors[:RELOAD_ERRORS_SHOWN]]
            if not loaded.errors:
                lines.append(t(call.lang, "reload_empty"))
            return [Reply("\n".join(lines), private=True)]
        return [
            Reply(
                t(call.lang, "reload_done", questions=len(loaded.bank), warnings=len(loaded.warnings)),
                private=True,
            )
        ]

    async def _forgetme(self, call: Call) -> list[Reply]:
        words = call.args.split()
        if [word.casefold() for word in words[:1]] != ["yes"]:
            answers, reviews = await self.store.user_data_counts(call.user)
            button = Button(t(call.lang, "button_forget"), f"/forgetme yes {call.incoming.user_id}")
            return [
                Reply(t(call.lang, "forget_confirm", answers=answers, reviews=reviews), buttons=((button,),))
            ]
        if len(words) > 1 and words[1] != call.incoming.user_id:
            return [Reply(t(call.lang, "forget_not_yours"))]
        await self.store.forget_user(call.user)
        return [Reply(t(call.lang, "forgotten"))]

    # --- text building -------------------------------------------------------------------

    def _question_text(self, lang: str, question: Question) -> str:
        lines = [t(lang, "question_heading", title=question.title)]
        meta = [escape(part) for part in (question.company, question.round) if part]
        meta += [escape(tag) for tag in question.tags]
        if meta:
            lines.append(" · ".join(meta))
        return "\n".join(lines)

    def _question_reply(
        self, lang: str, post: Post, chat: ChatRef | None, in_group: bool, settings: ChatSettings
    ) -> Reply:
        question = self.bank.get(post.question_id)
        if question is None:
            return Reply(t(lang, "question_gone"), chat=chat)
        if not in_group:
            hint = "hint_private"
        elif settings.answers == "private":
            hint = "hint_group_private"
        elif post.chat_key.startswith("discord:"):
            hint = "hint_group_thread"  # Discord opens a thread on the post and adds an Answer button
        else:
            hint = "hint_group_spoiler"
        text = self._question_text(lang, question) + "\n\n" + t(lang, hint)
        buttons = [Button(t(lang, "button_reveal"), f"/reveal {post.id}")]
        if post.kind == "quiz":
            buttons.append(Button(t(lang, "button_skip"), "/skip"))
        elif in_group and settings.answers == "private":
            # Telegram turns a `/start …` payload into a deep link to the bot's private chat.
            buttons.append(Button(t(lang, "button_answer_privately"), f"/start answer-{post.id}"))
        return Reply(
            text, buttons=(tuple(buttons),), chat=chat, kind="question", question=question, post_id=post.id
        )

    def _some_tags(self) -> str:
        return ", ".join(escape(tag) for tag, _ in self.bank.tag_counts().most_common(8))


def _option(name: str, required: bool = False) -> Option:
    return Option(name, required, f"option_{name}")


# The command table: the one source for dispatch, /help, permissions and the platforms' menus.
COMMANDS: tuple[Command, ...] = (
    Command("start", (), False, "help_start", Core._start),
    Command("help", (), False, "help_help", Core._help),
    Command("quiz", (_option("filter"),), False, "help_quiz", Core._quiz),
    Command("answer", (_option("text", required=True),), False, "help_answer", Core._answer),
    Command("reveal", (_option("id"),), False, "help_reveal", Core._reveal),
    Command("full", (_option("id", required=True),), False, "help_full", Core._full),
    Command("grade", (_option("grade", required=True), _option("id")), False, "help_grade", Core._grade),
    Command("skip", (), False, "help_skip", Core._skip),
    Command("stats", (), False, "help_stats", Core._stats),
    Command("top", (), False, "help_top", Core._top),
    Command("tags", (), False, "help_tags", Core._tags),
    Command("subscribe", (_option("time"), _option("zone")), True, "help_subscribe", Core._subscribe),
    Command("unsubscribe", (), True, "help_unsubscribe", Core._unsubscribe),
    Command("settings", (_option("key"), _option("value")), False, "help_settings", Core._settings),
    Command("forgetme", (_option("confirm"),), False, "help_forgetme", Core._forgetme),
    Command("reload", (), False, "help_reload", Core._reload),  # owners only: checked in the handler
)
# Only in a core with a model to ask (see Core.commands).
FEEDBACK_COMMAND = Command("feedback", (_option("id"),), False, "help_feedback", answer_feedback.feedback)


def commands_with(*, feedback: bool) -> tuple[Command, ...]:
    """The command table, with /feedback (after /grade) when a model is configured."""
    if not feedback:
        return COMMANDS
    at = next(i for i, command in enumerate(COMMANDS) if command.name == "grade") + 1
    return (*COMMANDS[:at], FEEDBACK_COMMAND, *COMMANDS[at:])


POST_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit SQLite's 64-bit integers
RELOAD_ERRORS_SHOWN = 10
TAGS_SHOWN = 40  # the bundled bank has over 200 tags: a wall of text helps nobody
COMMANDS_BY_NAME = {command.name: command for command in COMMANDS}


def _valid_unicode(text: str) -> str:
    """Lone surrogates (JSON accepts "\\ud800") become U+FFFD: they cannot be stored or sent as UTF-8."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
