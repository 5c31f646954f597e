"""What the store hands out and takes in: plain values, the same whichever database holds them.

Keys are text: chats `platform:chat_id[/thread]` (see ChatRef.key), users `platform:user_id`.
Instants are timezone-aware UTC datetimes; a backend stores them to the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal


class PostKind(StrEnum):
    DAILY = "daily"  # one per chat and local date, sent by the scheduler
    QUIZ = "quiz"  # asked for with /quiz or /skip


class PostStatus(StrEnum):
    """A daily post's claim: a second claim for the same chat and day is impossible."""

    PENDING = "pending"  # claimed, before (or while) the platform gets it
    SENT = "sent"  # the platform accepted it; `message_id` says where
    FAILED = "failed"  # never sent: the chat is gone, or the claim outlived its grace window


class RevealStatus(StrEnum):
    """A daily post's scheduled reveal (NULL until the scheduler claims it)."""

    PENDING = "pending"  # claimed, being sent
    SENT = "sent"
    FAILED = "failed"  # the chat is gone
    SKIPPED = "skipped"  # due too long ago: past the grace window


class DatabaseBusy(Exception):
    """Another process held the database longer than the store waits; worth retrying shortly."""


class DatabaseUnavailable(DatabaseBusy):
    """The database server does not answer (restarting, unreachable, refusing the connection); what
    was being written did not commit. Worth retrying shortly, as when it is busy."""


def iso(instant: datetime) -> str:
    """The stored form of an instant: ISO-8601 UTC to the second, which sorts as text."""
    return instant.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


@dataclass(frozen=True)
class ChatRow:
    key: str
    is_group: bool
    settings: dict
    subscribed: bool
    schedule_from: datetime | None
    platform_lang: str | None
    revision: int  # bumped by every change of its settings or subscription (see save_chat)


@dataclass(frozen=True)
class Post:
    id: int
    chat_key: str
    question_id: str
    kind: str  # a PostKind
    user_key: str | None
    local_date: str | None
    message_id: str | None
    cycle: int
    created_at: datetime
    reveal_due_at: datetime | None
    revealed_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Post:
        """From a row that reads by column name, instants as stored text."""
        return cls(
            id=row["id"],
            chat_key=row["chat_key"],
            question_id=row["question_id"],
            kind=row["kind"],
            user_key=row["user_key"],
            local_date=row["local_date"],
            message_id=row["message_id"],
            cycle=row["cycle"],
            created_at=datetime.fromisoformat(row["created_at"]).astimezone(UTC),
            reveal_due_at=from_iso(row["reveal_due_at"]),
            revealed_at=from_iso(row["revealed_at"]),
        )


@dataclass(frozen=True)
class OpenQuestion:
    post: Post
    filter: str  # the /quiz filter that chose it


@dataclass(frozen=True)
class Attempt:
    id: int
    post_id: int
    question_id: str
    grade: str | None


@dataclass(frozen=True)
class Review:
    card: str
    post_id: int | None  # the post whose grade produced the card
    previous_card: str | None


class FeedbackState(StrEnum):
    PENDING = "pending"  # claimed: the model is being asked
    DONE = "done"  # the review is stored


# What an answer came to (Store.add_attempt): stored, first or over the user's earlier one; or
# refused, the user's answer kept because it is graded or the post revealed (or due to be), or,
# with no answer of the user's to keep, because the post was revealed.
AnswerOutcome = Literal["added", "replaced", "kept_graded", "kept_revealed", "closed"]

# What claiming a member's review of a post came to (Store.claim_feedback).
ClaimOutcome = Literal["claimed", "done", "pending", "user_limit", "chat_limit"]


@dataclass(frozen=True)
class FeedbackRecord:
    state: str  # a FeedbackState
    review: str | None  # JSON, when done
    created_at: datetime


@dataclass(frozen=True)
class FeedbackClaim:
    """One member's review of one post: who, what, and the day's limits it counts against."""

    post_id: int
    user_key: str
    chat_key: str  # the post's chat
    question_id: str
    digest: str  # of the answer as reviewed: with question_id, the cache key
    day: str  # the UTC date the limits count
    now: datetime
    stale_before: datetime  # a pending claim older than this was abandoned (its process died)
    user_limit: int
    chat_limit: int


@dataclass(frozen=True)
class UserStats:
    answered: list[str]  # the question of each answer (current ones: one per question post)
    graded: int
    days: list[date]  # local days with an answer, newest first
    due: int  # reviews due now


@dataclass(frozen=True)
class Standing:
    user_key: str
    name: str
    answers: int
    grades: int


# --- what the scheduler reads: each row carries its chat's settings as stored (JSON text), parsed
# per chat by the scheduler, so that one unreadable row spoils only its own chat.


@dataclass(frozen=True)
class SubscribedChat:
    key: str
    settings_json: str
    schedule_from: datetime  # only instants after it are due (the subscription or settings change)
    last_daily: date | None  # the latest local date the chat has a daily post for


@dataclass(frozen=True)
class StaleClaim:
    """A daily post still pending after its lease: left by a crash, or by retries that ran out."""

    post_id: int
    chat_key: str
    settings_json: str
    local_date: date
    claimed_at: datetime  # the claim's `created_at`, compared when taking it over


@dataclass(frozen=True)
class DueReveal:
    """A sent daily post whose reveal is due and unclaimed, or claimed by a sweep that died."""

    post_id: int
    chat_key: str
    settings_json: str
    due_at: datetime
    claimed_at: datetime | None  # a stale claim's start (`revealed_at`), compared when taking it over
