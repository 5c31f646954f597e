"""The Store API: what the rest of the bot may ask of the database, whichever backend holds it.

Every backend implements these methods with the same meaning (sqlite.py documents each one);
values in and out are plain Python and the records of records.py, never a connection or a row.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from bot.core.model import ChatRef
from bot.core.store.records import (
    AnswerOutcome,
    Attempt,
    ChatRow,
    ClaimOutcome,
    DueReveal,
    FeedbackClaim,
    FeedbackRecord,
    OpenQuestion,
    Post,
    RevealStatus,
    Review,
    StaleClaim,
    Standing,
    SubscribedChat,
    UserStats,
)
from bot.core.store.tables import EXPORT_BATCH


class Store(Protocol):
    backend: str  # "sqlite" or "postgresql", for /healthz and the benches

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def ping(self) -> bool: ...

    # --- reads for commands
    async def chat(self, key: str) -> ChatRow | None: ...

    async def post(self, post_id: int) -> Post | None: ...

    async def post_by_message(self, chat_keys: tuple[str, ...], message_id: str) -> Post | None: ...

    async def open_question(self, user_key: str, chat_key: str) -> OpenQuestion | None: ...

    async def current_post(self, user_key: str, chat_key: str, *, any_kind: bool = False) -> Post | None: ...

    async def skipped_questions(self, user_key: str, chat_key: str, limit: int) -> list[str]: ...

    async def daily_cycle(self, chat_key: str) -> tuple[int, set[str], str | None]: ...

    async def seen_questions(self, user_key: str, among: Sequence[str] | None = None) -> set[str]: ...

    async def due_reviews(self, user_key: str, now: datetime, limit: int) -> list[str]: ...

    async def answerers(self, post_id: int) -> list[str]: ...

    async def attempt(self, post_id: int, user_key: str) -> tuple[Attempt, Review | None] | None: ...

    async def user_stats(self, user_key: str, now: datetime) -> UserStats: ...

    async def leaderboard(self, chat_key: str, since: datetime | None, limit: int) -> list[Standing]: ...

    async def user_data_counts(self, user_key: str) -> tuple[int, int]: ...

    async def knows_user(self, user_key: str) -> bool: ...

    # --- writes for commands: one transaction each
    async def save_chat(
        self,
        chat: ChatRef,
        is_group: bool,
        settings: dict,
        now: datetime,
        *,
        revision: int,
        subscribed: bool | None = None,
        reschedule: bool = False,
        platform_lang: str | None = None,
    ) -> bool: ...

    async def unsubscribe(self, chat_key: str) -> bool: ...

    async def add_quiz(
        self,
        chat: ChatRef,
        is_group: bool,
        user_key: str,
        user_name: str,
        question_id: str,
        quiz_filter: str,
        now: datetime,
    ) -> Post: ...

    async def open_post(
        self, chat: ChatRef, is_group: bool, user_key: str, user_name: str, post_id: int, now: datetime
    ) -> None: ...

    async def set_message_id(self, post_id: int, message_id: str) -> None: ...

    async def add_attempt(
        self, post: Post, user_key: str, user_name: str, text: str, hidden: bool, local_date: str, now: datetime
    ) -> AnswerOutcome: ...

    async def grade(
        self,
        attempt: Attempt,
        user_key: str,
        grade: str,
        previous_card: str | None,
        card: str,
        due: datetime,
        now: datetime,
        *,
        replacing: Review | None,
    ) -> bool: ...

    async def mark_revealed(self, post_id: int, now: datetime) -> None: ...

    async def secret(self, name: str) -> bytes: ...

    async def forget_user(self, user_key: str) -> None: ...

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None: ...

    # --- feedback from a model: a member's review of a post, the cache, the daily limits
    async def current_answer(self, post_id: int, user_key: str) -> str | None: ...

    async def latest_answered_post(self, user_key: str, revealed_by: datetime) -> Post | None: ...

    async def feedback(self, post_id: int, user_key: str) -> FeedbackRecord | None: ...

    async def cached_feedback(self, question_id: str, digest: str) -> str | None: ...

    async def claim_feedback(self, claim: FeedbackClaim) -> ClaimOutcome: ...

    async def save_feedback(self, claim: FeedbackClaim, review: str) -> None: ...

    async def drop_feedback_claim(self, claim: FeedbackClaim, *, refund: bool) -> None: ...

    # --- the scheduler's bookkeeping: claims, leases, reveals. A write that finds the database
    # held by another process past the backend's wait raises DatabaseBusy.
    async def subscribed_chats(self, after: str, limit: int) -> list[SubscribedChat]: ...

    async def stale_claims(self, claimed_before: datetime) -> list[StaleClaim]: ...

    async def due_reveals(self, now: datetime, claimed_before: datetime) -> list[DueReveal]: ...

    async def claim_daily(
        self, chat_key: str, question_id: str, local_date: date, cycle: int, now: datetime
    ) -> int | None: ...

    async def take_over_claim(self, post_id: int, claimed_at: datetime, now: datetime) -> bool: ...

    async def mark_sent(self, post_id: int, message_id: str, sent_at: datetime, reveal_due_at: datetime) -> None: ...

    async def mark_failed(self, post_id: int) -> None: ...

    async def claim_reveal(self, post_id: int, claimed_at: datetime | None, now: datetime) -> bool: ...

    async def end_reveal(self, post_id: int, status: RevealStatus) -> None: ...

    # --- moving house (dailyq copy-db): every row, as tables.py lists the tables and their kinds
    async def row_counts(self) -> dict[str, int]: ...

    def export_rows(self, batch_size: int = EXPORT_BATCH) -> AsyncIterator[tuple[str, list[tuple]]]: ...

    async def import_rows(
        self, batches: AsyncIterable[tuple[str, list[tuple]]], expected: Mapping[str, int], *, replace: bool
    ) -> None: ...

    async def bots_connected(self) -> int: ...
