"""The engine under load: 1,000 users in 50 groups and their private chats, on a 10,000-question bank
with 1,000,000 answers already in the database, doing quiz → answer → reveal → grade cycles.

    python -m bench.engine [--users 1000] [--groups 50] [--attempts 1000000] [--cycles 2] [--db URL]

Commands run one after another through Core.handle, exactly as an adapter calls it, so the times
are the core's own cost per command, the database included: a temporary SQLite file, or with
`--db postgresql://…` a PostgreSQL database whose tables the bench replaces. Prints commands per
second, the median and p99 per command, and one line per goal (the backend's) at the end. The
cycles are timed in five consecutive rounds over the same database (a preload takes longer than all
the rounds), and each goal line is the median of the rounds' figures: the typical round, not the
lucky one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import synthetic_bank  # noqa: E402
from bot.config import Settings, database_location  # noqa: E402
from bot.core import srs  # noqa: E402
from bot.core.bank import Bank  # noqa: E402
from bot.core.commands import Core  # noqa: E402
from bot.core.model import ChatRef, Incoming  # noqa: E402
from bot.core.store import Store, open_store  # noqa: E402
from bot.core.store.tables import TABLES  # noqa: E402
from tests.clock import FakeClock  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 730
SEED = 20260302
LOAD_BATCH = 20_000
# Per backend: the command median and the /stats and /top p99, in ms.
GOALS = {"sqlite": (2, 10), "postgresql": (3, 15)}
ROUNDS = 5  # a median of fewer rounds is a lucky or an unlucky one


def group_of(user: int, groups: int) -> str:
    return f"bench:g{user % groups}"


async def preload(
    store: Store, bank: Bank, users: int, groups: int, attempts: int, rng: random.Random
) -> int:
    """Two years of history: daily posts answered in the groups (60% of the attempts), quizzes
    answered in private (a third of them answered twice, the first answer superseded), half of the
    answers graded with a review card; loaded the way `dailyq copy-db` loads a database (one
    transaction, replacing what the database held). Returns the attempts written."""
    ids = [q.id for q in bank.questions]
    first_day = (NOW - timedelta(days=HISTORY_DAYS)).date()
    days = [first_day + timedelta(days=d) for d in range(HISTORY_DAYS)]
    midnights = [datetime(day.year, day.month, day.day, tzinfo=UTC) for day in days]
    minutes = [timedelta(minutes=m) for m in range(24 * 60)]
    texts = ["x" * n for n in range(20, 121)]
    card = srs.new_card_json(NOW)
    due_dates = [NOW + timedelta(days=d) for d in range(-30, 61)]
    # Rows as tables.py lists the columns: chats (key, platform, chat_id, thread_id, is_group,
    # settings, subscribed, schedule_from, created_at, platform_lang, revision), posts (id, chat_key, question_id, kind, user_key,
    # local_date, status, message_id, cycle, created_at, sent_at, reveal_due_at, revealed_at,
    # reveal_status), attempts (id, post_id, user_key, chat_key, question_id, text, hidden,
    # current, local_date, created_at, grade, graded_at), reviews (user_key, question_id, card,
    # due_at, updated_at, post_id, previous_card).
    posts: list[tuple] = []
    attempt_rows: list[tuple] = []
    reviews: dict[tuple[str, str], tuple] = {}

    def answer(
        post_id: int, user_key: str, chat_key: str, question_id: str, day: int, minute: int, current: bool
    ) -> None:
        at = midnights[day] + minutes[minute]
        graded = current and rng.random() < 0.5
        attempt_rows.append((
            len(attempt_rows) + 1, post_id, user_key, chat_key, question_id, rng.choice(texts), True, current,
            days[day], at, "good" if graded else None, at if graded else None,
        ))  # fmt: skip
        if graded:
            reviews[(user_key, question_id)] = (user_key, question_id, card, rng.choice(due_dates), at, post_id, None)

    members: dict[int, list[str]] = defaultdict(list)
    for user in range(users):
        members[user % groups].append(f"bench:u{user}")
    answer_rate = min(1.0, attempts * 0.6 / (HISTORY_DAYS * users))
    for day in range(HISTORY_DAYS):
        posted = midnights[day] + minutes[9 * 60]
        for g in range(groups):
            post_id, chat_key, question_id = len(posts) + 1, f"bench:g{g}", rng.choice(ids)
            posts.append((post_id, chat_key, question_id, "daily", None, days[day], "sent", f"m{post_id}", 0,
                          posted, posted, midnights[day] + minutes[17 * 60], None, None))  # fmt: skip
            for user_key in members[g]:
                if rng.random() < answer_rate:
                    answer(post_id, user_key, chat_key, question_id, day, 9 * 60 + int(rng.random() * 600), True)
    per_user = (attempts - len(attempt_rows)) // users
    for user in range(users):
        user_key, chat_key = f"bench:u{user}", f"bench:p{user}"
        written = 0
        while written < per_user:
            post_id, question_id = len(posts) + 1, rng.choice(ids)
            day, minute = int(rng.random() * HISTORY_DAYS), int(rng.random() * 1430)
            at = midnights[day] + minutes[minute]
            posts.append((post_id, chat_key, question_id, "quiz", user_key, None, "sent", f"m{post_id}", 0,
                          at, at, None, None, None))  # fmt: skip
            if written + 2 <= per_user and rng.random() < 1 / 3:
                answer(post_id, user_key, chat_key, question_id, day, minute, False)
                written += 1
            answer(post_id, user_key, chat_key, question_id, day, minute + 5, True)
            written += 1

    start = midnights[0]
    tables = {
        "chats": [(f"bench:g{g}", "bench", f"g{g}", None, True, "{}", False, None, start, None, 0) for g in range(groups)]
        + [(f"bench:p{u}", "bench", f"p{u}", None, False, "{}", False, None, start, None, 0) for u in range(users)],
        "users": [(f"bench:u{u}", f"user {u}", None, start) for u in range(users)],
        "posts": posts,
        "open_questions": [],
        "attempts": attempt_rows,
        "reviews": list(reviews.values()),
    }

    async def batches() -> AsyncIterator[tuple[str, list[tuple]]]:
        for table, rows in tables.items():
            for at in range(0, len(rows), LOAD_BATCH):
                yield table, rows[at : at + LOAD_BATCH]

    expected = dict.fromkeys(TABLES, 0) | {table: len(rows) for table, rows in tables.items()}  # the rest empty
    await store.import_rows(batches(), expected, replace=True)
    return len(attempt_rows)


class Bench:
    def __init__(self, core: Core, clock: FakeClock, groups: int) -> None:
        self.core = core
        self.clock = clock
        self.groups = groups
        self.times: dict[str, list[float]] = defaultdict(list)  # wall clock, ms
        # CPU time of the whole process (the SQLite thread included): what a busy machine adds to
        # the wall clock by making us wait for a core is left out.
        self.cpu_times: dict[str, list[float]] = defaultdict(list)

    async def run(self, user: int, chat: ChatRef, is_group: bool, text: str) -> list:
        incoming = Incoming(
            platform="bench", chat=chat, user_id=f"u{user}", user_name=f"user {user}", text=text,
            is_group=is_group, hidden=True, lang="zh-hans",
        )  # fmt: skip
        self.clock.advance(timedelta(milliseconds=250))
        started, cpu_started = time.perf_counter(), time.process_time()
        replies = await self.core.handle(incoming)
        name = text.split()[0]
        self.times[name].append((time.perf_counter() - started) * 1000)
        self.cpu_times[name].append((time.process_time() - cpu_started) * 1000)
        return replies

    async def cycle(self, user: int, rng: random.Random) -> None:
        in_group = rng.random() < 0.5
        chat = ChatRef.from_key(group_of(user, self.groups) if in_group else f"bench:p{user}")
        [question] = await self.run(user, chat, in_group, "/quiz")
        post_id = question.post_id
        await self.run(user, chat, in_group, "/answer ||" + "答案 answer " * rng.randint(5, 40) + "||")
        await self.run(user, chat, in_group, f"/reveal {post_id}")
        await self.run(user, chat, in_group, f"/grade {rng.choice(srs.GRADES)} {post_id}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--cycles", type=int, default=2, help="quiz→answer→reveal→grade cycles per user")
    parser.add_argument(
        "--db", type=database_location,
        help="a SQLite file or a postgresql:// URL of a scratch database: its tables are replaced "
        "(default: a temporary SQLite file)",
    )  # fmt: skip
    args = parser.parse_args()
    rng = random.Random(SEED)

    began = time.perf_counter()
    bank = synthetic_bank(args.questions, SEED)
    print(f"bank: {len(bank)} questions in {time.perf_counter() - began:.1f} s")
    with tempfile.TemporaryDirectory() as directory:
        store = await open_store(args.db or Path(directory) / "bench.sqlite3")
        backend = store.backend
        try:
            began = time.perf_counter()
            written = await preload(store, bank, args.users, args.groups, args.attempts, rng)
            print(f"preload: {written:,} attempts in {time.perf_counter() - began:.1f} s ({backend})")

            clock = FakeClock(NOW)
            core = Core(store, bank, Settings(), clock, rng=random.Random(SEED))
            bench = Bench(core, clock, args.groups)
            began = time.perf_counter()
            rounds: list[dict[str, int]] = []  # where each round ends in each command's times
            round_length, done = args.cycles * args.users / ROUNDS, 0
            for _ in range(args.cycles):
                for user in rng.sample(range(args.users), args.users):
                    await bench.cycle(user, rng)
                    done += 1
                    if done >= round_length * (len(rounds) + 1):
                        rounds.append({name: len(times) for name, times in bench.times.items()})
                    if rng.random() < 0.5:
                        await bench.run(user, ChatRef.from_key(f"bench:p{user}"), False, "/stats")
                    if rng.random() < 0.5:
                        group = ChatRef.from_key(group_of(user, args.groups))
                        await bench.run(user, group, True, "/top")
            elapsed = time.perf_counter() - began

            choice_ms = []
            for g in range(args.groups):
                started = time.perf_counter()
                await core.choose_daily_question(f"bench:g{g}")
                choice_ms.append((time.perf_counter() - started) * 1000)
        finally:
            await store.close()

    everything = [ms for times in bench.times.values() for ms in times]
    print(f"\n{len(everything):,} commands in {elapsed:.1f} s: {len(everything) / elapsed:,.0f} commands/s")
    print(f"{'command':<10} {'count':>7} {'median ms':>10} {'p99 ms':>8} {'cpu median':>11} {'cpu p99':>8}")
    for name, times in sorted(bench.times.items()):
        cpu = bench.cpu_times[name]
        print(
            f"{name:<10} {len(times):>7} {statistics.median(times):>10.2f} {percentile(times, 0.99):>8.2f}"
            f" {statistics.median(cpu):>11.2f} {percentile(cpu, 0.99):>8.2f}"
        )
    all_cpu = [ms for times in bench.cpu_times.values() for ms in times]
    print(f"all commands: cpu median {statistics.median(all_cpu):.2f} ms")
    print(f"daily choice over {len(bank):,} questions: median {statistics.median(choice_ms):.2f} ms")
    figures = []
    print(f"{'round':<6} {'commands':>8} {'median ms':>10} {'/stats p99':>11} {'/top p99':>9}")
    for number, ends in enumerate(rounds):
        starts = rounds[number - 1] if number else {}
        times = {name: bench.times[name][starts.get(name, 0) : end] for name, end in ends.items()}
        commands = [ms for part in times.values() for ms in part]
        figures.append(
            (statistics.median(commands), percentile(times["/stats"], 0.99), percentile(times["/top"], 0.99))
        )
        print(
            f"{number + 1:<6} {len(commands):>8,} {figures[-1][0]:>10.2f} {figures[-1][1]:>11.2f} {figures[-1][2]:>9.2f}"
        )
    command_median, stats_p99, top_p99 = (statistics.median(column) for column in zip(*figures, strict=True))
    print()
    median_goal, p99_goal = GOALS[backend]
    print(f"command_median_ms ({backend}): {command_median:.2f} (goal: < {median_goal})")
    print(f"stats_p99_ms ({backend}): {stats_p99:.2f} (goal: < {p99_goal})")
    print(f"top_p99_ms ({backend}): {top_p99:.2f} (goal: < {p99_goal})")


if __name__ == "__main__":
    asyncio.run(main())
