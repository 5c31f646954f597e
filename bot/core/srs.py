"""Spaced repetition: the fsrs package behind two small functions.

Cards go straight to day-sized intervals (no learning steps of minutes): a daily-question habit
reviews at most once a day, and `/quiz` must not bring the same question back ten minutes later.
"""

from __future__ import annotations

from datetime import UTC, datetime

import fsrs

GRADES: tuple[str, ...] = ("again", "hard", "good", "easy")

_RATINGS = {
    "again": fsrs.Rating.Again,
    "hard": fsrs.Rating.Hard,
    "good": fsrs.Rating.Good,
    "easy": fsrs.Rating.Easy,
}


def make_scheduler(fuzz: bool = True) -> fsrs.Scheduler:
    """fsrs with day-sized steps; `fuzz=False` makes intervals exact (tests)."""
    return fsrs.Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=fuzz)


_DEFAULT = make_scheduler()


def new_card_json(now: datetime) -> str:
    return _new_card(now).to_json()


def _new_card(now: datetime) -> fsrs.Card:
    # An explicit id: fsrs would otherwise derive one from the wall clock and sleep a millisecond.
    return fsrs.Card(card_id=1, due=now.astimezone(UTC))


def review(
    card_json: str | None, grade: str, now: datetime, scheduler: fsrs.Scheduler = _DEFAULT
) -> tuple[str, datetime]:
    """The card after a review graded `grade` at `now` (a new card when None), and when it is due next."""
    if grade not in _RATINGS:
        raise ValueError(f"grade must be one of {', '.join(GRADES)}, got {grade!r}")
    now = now.astimezone(UTC)
    # A first review starts from a new card as it is, not through its JSON and back.
    card = fsrs.Card.from_json(card_json) if card_json else _new_card(now)
    reviewed, _log = scheduler.review_card(card, _RATINGS[grade], review_datetime=now)
    return reviewed.to_json(), reviewed.due
