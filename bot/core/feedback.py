"""Feedback on an answer: what the core asks of a model, what it gets back, and the grade it suggests.

The core calls a `Reviewer`; the one dailyq ships (bot.feedback.openai_reviewer) talks to any
OpenAI-compatible server and lives outside the core, because the core imports no outside client
library. A reviewer either returns a checked `Review` or raises `ReviewFailed` saying why, so the
core can answer politely and keep the member's answer and grade whatever the model did.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

MAX_SCORE = 5

FailureKind = Literal["timeout", "refused", "invalid", "unavailable", "busy"]


@dataclass(frozen=True)
class ReviewRequest:
    question: str  # the question's title, markdown
    reference: str  # the reference answer, markdown
    summary: str | None  # the bank's <mark> summary of the reference, when it has one
    answer: str  # the member's answer, as they sent it: data to judge, never instructions
    lang: str  # the chat's language: the review is written in it


@dataclass(frozen=True)
class Review:
    score: int  # 0 (nothing right) … MAX_SCORE (complete and correct)
    covered: tuple[str, ...]  # key points of the reference the answer got
    missed: tuple[str, ...]  # key points it missed or got wrong
    advice: str  # one sentence


def review_to_json(review: Review) -> str:
    return json.dumps(asdict(review), ensure_ascii=False)


def review_from_json(text: str) -> Review:
    data = json.loads(text)
    return Review(int(data["score"]), tuple(data["covered"]), tuple(data["missed"]), str(data["advice"]))


def answer_text(answer: str) -> str:
    """The answer as the model should read it: spoiler marks removed, whitespace runs made one space."""
    return " ".join(re.sub(r"\|\|(.+?)\|\|", r"\1", answer, flags=re.DOTALL).split())


def answer_digest(request: ReviewRequest) -> str:
    """The cache key of a review beside the question id: the same answer, reference and language
    get the same review, so a second member with the same answer costs no second request."""
    material = "\0".join((request.lang, request.reference, request.summary or "", request.answer))
    return hashlib.sha256(material.encode()).hexdigest()


class ReviewFailed(Exception):
    """No review: `kind` says why (the model timed out, refused, answered nonsense, was down or busy)."""

    def __init__(self, kind: FailureKind, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Reviewer(Protocol):
    model: str  # the model's name, as members are told where their answers go

    async def review(self, request: ReviewRequest) -> Review: ...


def suggested_grade(score: int) -> str:
    """The spaced-repetition grade a score suggests: 0–1 again, 2 hard, 3–4 good, 5 easy.

    A 3 ("most key points, some gaps") is still a successful recall, which is what Good means to
    the scheduler; Hard is kept for an answer that got the gist and missed much.
    """
    if score <= 1:
        return "again"
    if score == 2:
        return "hard"
    return "easy" if score >= MAX_SCORE else "good"
