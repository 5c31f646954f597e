"""`dailyq check [PATH ...] [--json]`: parse banks the way the bot would and report every problem."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from bot.core.bank import LoadResult, Problem, load
from bot.core.model import Question

TOP_TAGS = 10


def run_check(paths: list[Path], as_json: bool) -> int:
    """Print the report; 0 when at least one question loaded and nothing failed, else 1."""
    results = [(path, load(path)) for path in paths]
    questions = [q for _, result in results for q in result.bank.questions]
    errors = [p for _, result in results for p in result.errors]
    if as_json:
        report = {
            "questions": [_question_json(q) for q in questions],
            "warnings": [_problem_json(p) for _, result in results for p in result.warnings],
            "errors": [_problem_json(p) for p in errors],
        }
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for path, result in results:
            _print_result(path, result)
        _print_totals(questions, sum(len(result.files) for _, result in results))
    return 0 if questions and not errors else 1


def _print_result(path: Path, result: LoadResult) -> None:
    per_file = Counter(q.file for q in result.bank.questions)
    print(f"{path}:")
    for name in result.files:
        print(f"  {per_file[name]:4d}  {name}")
    for problem in result.warnings:
        print(f"{problem.file}:{problem.line}: warning: {problem.message}")
    for problem in result.errors:
        print(f"{problem.file}:{problem.line}: error: {problem.message}")


def _print_totals(questions: list[Question], file_count: int) -> None:
    with_metadata = sum(1 for q in questions if q.company or q.round or q.date or q.tags or q.extra)
    with_summary = sum(1 for q in questions if q.summary)
    print(
        f"{len(questions)} questions in {file_count} files "
        f"({with_metadata} with metadata, {with_summary} with a summary)"
    )
    tags = Counter(t for q in questions for t in q.tags).most_common(TOP_TAGS)
    if tags:
        print("most common tags: " + ", ".join(f"{tag} ({count})" for tag, count in tags))


def _question_json(question: Question) -> dict[str, object]:
    return {
        "id": question.id,
        "title": question.title,
        "chapter": question.chapter,
        "section": question.section,
        "company": question.company,
        "round": question.round,
        "date": question.date,
        "tags": list(question.tags),
        "extra": dict(question.extra),
        "summary": question.summary,
        "answer": question.answer,
        "file": question.file,
        "line": question.line,
    }


def _problem_json(problem: Problem) -> dict[str, object]:
    return {"file": problem.file, "line": problem.line, "message": problem.message}
