"""`dailyq check [PATH ...] [--json]`: parse banks the way the bot would and report every problem."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from bot.core.bank import LoadResult, Problem, load
from bot.core.model import Question
from bot.core.render import formulas

TOP_TAGS = 10


def run_check(paths: list[Path], as_json: bool) -> int:
    """Print the report; 0 when at least one question loaded and nothing failed, else 1."""
    results = [(path, load(path)) for path in paths]
    questions = [q for _, result in results for q in result.bank.questions]
    errors = [p for _, result in results for p in result.errors]
    notes = {path: [*result.notes, *_unconverted_formulas(path, result)] for path, result in results}
    if as_json:
        report = {
            "questions": [_question_json(q) for q in questions],
            "warnings": [_problem_json(p) for _, result in results for p in result.warnings],
            "errors": [_problem_json(p) for p in errors],
            "notes": [_problem_json(p) for path_notes in notes.values() for p in path_notes],
        }
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for path, result in results:
            _print_result(path, result, notes[path])
        _print_totals(questions, sum(len(result.files) for _, result in results))
        if not questions:
            where = ", ".join(map(str, paths))
            print(f"error: no questions in {where} (a question starts with a '### Q.' heading)")
    return 0 if questions and not errors else 1


def _unconverted_formulas(path: Path, result: LoadResult) -> list[Problem]:
    """Formulas the bot shows as TeX source, per file: bank authors may want to rewrite them."""
    root = path if path.is_dir() else path.parent
    notes: list[Problem] = []
    for name in result.files:
        try:
            text = (root / name).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue  # already an error of the load
        for formula in formulas(text):
            if formula.text is None:
                source = " ".join(formula.source.split())
                notes.append(Problem(name, formula.line, f"formula shown as TeX source: {source}"))
    return notes


def _print_result(path: Path, result: LoadResult, notes: list[Problem]) -> None:
    per_file = Counter(q.file for q in result.bank.questions)
    print(f"{path}:")
    for name in result.files:
        print(f"  {per_file[name]:4d}  {name}")
    for kind, problems in (("info", notes), ("warning", result.warnings), ("error", result.errors)):
        for problem in problems:
            print(f"{problem.location}: {kind}: {problem.message}")


def _print_totals(questions: list[Question], file_count: int) -> None:
    with_metadata = sum(1 for q in questions if q.company or q.round or q.date or q.tags or q.extra)
    with_summary = sum(1 for q in questions if q.summary)
    print(
        f"{_count(len(questions), 'question')} in {_count(file_count, 'file')} "
        f"({with_metadata} with metadata, {with_summary} with a summary)"
    )
    tags = Counter(t for q in questions for t in q.tags).most_common(TOP_TAGS)
    if tags:
        print("most common tags: " + ", ".join(f"{tag} ({count})" for tag, count in tags))


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


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
