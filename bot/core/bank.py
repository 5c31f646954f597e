"""Markdown banks → Questions (the parser), and the Bank the rest of the core reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from types import MappingProxyType

from bot.core.model import Question


class Bank:
    """An immutable set of questions, in bank order, with lookups the commands need."""

    def __init__(self, questions: Iterable[Question]) -> None:
        self.questions: tuple[Question, ...] = tuple(questions)
        self.by_id = MappingProxyType({q.id: q for q in self.questions})

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, question_id: str) -> Question | None:
        return self.by_id.get(question_id)

    def matching(self, words: str) -> list[Question]:
        """Questions whose tag or company equals `words`, else whose title contains it (casefolded)."""
        needle = words.strip().casefold()
        if not needle:
            return list(self.questions)
        exact = [
            q
            for q in self.questions
            if needle in (t.casefold() for t in q.tags) or (q.company or "").casefold() == needle
        ]
        return exact or [q for q in self.questions if needle in q.title.casefold()]

    def tag_counts(self) -> Counter[str]:
        return Counter(t for q in self.questions for t in q.tags)

    def company_counts(self) -> Counter[str]:
        return Counter(q.company for q in self.questions if q.company)
