"""Spaced repetition through fsrs: day-sized intervals, deterministic without fuzz."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core import srs

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXACT = srs.make_scheduler(fuzz=False)


@pytest.mark.parametrize(("grade", "days"), [("again", 1), ("hard", 1), ("good", 2), ("easy", 8)])
def test_a_new_card_comes_back_after_whole_days(grade: str, days: int) -> None:
    _, due = srs.review(None, grade, NOW, EXACT)
    assert due == NOW + timedelta(days=days)


@pytest.mark.parametrize("grade", srs.GRADES)
def test_a_first_review_starts_from_a_new_card_without_a_json_round_trip(
    grade: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    through_json = srs.review(srs.new_card_json(NOW), grade, NOW, EXACT)
    monkeypatch.setattr(srs.fsrs.Card, "from_json", None)  # a first grade of every user: no parse
    assert srs.review(None, grade, NOW, EXACT) == through_json


def test_good_reviews_space_out_and_the_card_round_trips_as_json() -> None:
    card, due = srs.review(srs.new_card_json(NOW), "good", NOW, EXACT)
    intervals = [due - NOW]
    for _ in range(3):
        reviewed_at = due
        card, due = srs.review(card, "good", reviewed_at, EXACT)
        intervals.append(due - reviewed_at)
        assert json.loads(card)["due"] == due.isoformat()
    assert intervals == sorted(intervals) and intervals[-1] > timedelta(days=30)


def test_again_after_good_brings_the_card_back_sooner() -> None:
    card, due = srs.review(None, "good", NOW, EXACT)
    _, after_good = srs.review(card, "good", due, EXACT)
    _, after_again = srs.review(card, "again", due, EXACT)
    assert after_again < after_good


def test_fuzz_only_moves_the_date_a_little() -> None:
    card, due = srs.review(None, "easy", NOW, EXACT)
    exact = srs.review(card, "good", due, EXACT)[1] - due
    fuzzed = srs.review(card, "good", due, srs.make_scheduler(fuzz=True))[1] - due
    assert abs(fuzzed - exact) <= exact * 0.25


def test_an_unknown_grade_is_refused() -> None:
    with pytest.raises(ValueError, match="again, hard, good, easy"):
        srs.review(None, "perfect", NOW)
