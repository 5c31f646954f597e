"""What a user or chat has done, and forgetting it: /stats, /top, /tags, /forgetme."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, time, timedelta
from itertools import chain, repeat
from typing import TYPE_CHECKING

from bot.core.messages import LANGUAGES, join_list, t
from bot.core.model import Button, Reply
from bot.core.render import escape
from bot.core.timing import post_instant

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

LEADERBOARD_SIZE = 10
STATS_TAGS = 10
TAGS_SHOWN = 40  # the bundled bank has over 200 tags: a wall of text helps nobody
# `/forgetme confirm` (or 确认) as /help shows it in each language; the button and Discord's option say yes.
FORGET_CONFIRMATIONS = frozenset({"yes"} | {t(lang, "placeholder_confirm").casefold() for lang in LANGUAGES})


async def stats(core: Core, call: Call) -> list[Reply]:
    stats = await core.store.user_stats(call.user, call.now)
    current, best = streaks(stats.days, call.today())
    by_tag = Counter(chain.from_iterable(map(core.tags_by_id.get, stats.answered, repeat(()))))
    lines = [
        t(call.lang, "stats_heading", name=escape(call.incoming.user_name)),
        t(call.lang, "stats_counts", answered=len(stats.answered), graded=stats.graded),
        t(call.lang, "stats_streak", current=current, best=best),
        t(call.lang, "stats_due", due=stats.due),
    ]
    if by_tag:
        top_tags = sorted(by_tag.items(), key=lambda item: (-item[1], item[0]))[:STATS_TAGS]
        tags = join_list(call.lang, (f"{escape(tag)} {n}" for tag, n in top_tags))
        lines.append(t(call.lang, "stats_tags", tags=tags))
    return [Reply("\n".join(lines))]


async def top(core: Core, call: Call) -> list[Reply]:
    today = call.today()
    monday = post_instant(today - timedelta(days=today.weekday()), time(0, 0), call.settings.zone_info)
    sections = []
    for heading, since in (("top_week", monday), ("top_all", None)):
        standings = await core.store.leaderboard(call.incoming.chat.key, since, LEADERBOARD_SIZE)
        lines = [t(call.lang, heading)]
        lines += [
            t(call.lang, "top_line", rank=rank, name=escape(s.name), answers=s.answers, grades=s.grades)
            for rank, s in enumerate(standings, 1)
        ] or [t(call.lang, "top_empty")]
        sections.append("\n".join(lines))
    return [Reply("\n\n".join(sections))]


async def tags(core: Core, call: Call) -> list[Reply]:
    def listing(counts: Counter[str]) -> str:
        ranked = sorted(counts.items(), key=lambda i: (-i[1], i[0]))
        counted = (t(call.lang, "tag_count", name=escape(name), count=n) for name, n in ranked[:TAGS_SHOWN])
        shown = join_list(call.lang, counted)
        rest = len(ranked) - TAGS_SHOWN
        return shown + (t(call.lang, "tags_more", count=rest) if rest > 0 else "")

    tags, companies = core.bank.tag_counts(), core.bank.company_counts()
    lines = [t(call.lang, "tags_heading", questions=len(core.bank), tags=len(tags))]
    lines.append(listing(tags) if tags else t(call.lang, "tags_none"))
    if companies:
        lines += ["", t(call.lang, "companies_heading", companies=len(companies)), listing(companies)]
    return [Reply("\n".join(lines))]


async def forgetme(core: Core, call: Call) -> list[Reply]:
    words = call.args.split()
    if not await core.store.knows_user(call.user):
        return [Reply(t(call.lang, "forget_nothing"))]
    if not words or words[0].casefold() not in FORGET_CONFIRMATIONS:
        answers, reviews = await core.store.user_data_counts(call.user)
        button = Button(t(call.lang, "button_forget"), f"/forgetme yes {call.incoming.user_id}")
        return [Reply(t(call.lang, "forget_confirm", answers=answers, reviews=reviews), buttons=((button,),))]
    if len(words) > 1 and words[1] != call.incoming.user_id:
        return [Reply(t(call.lang, "forget_not_yours"))]
    await core.store.forget_user(call.user)
    return [Reply(t(call.lang, "forgotten"))]


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
