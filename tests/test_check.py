"""`python -m bot check`, run as the user runs it: a subprocess on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
META = "> **Company**: 美团 | **Round**: 一面 | **Date**: 2025-08-31 | **Tags**: [RL, PPO]"
QUESTION_KEYS = {
    "id", "title", "chapter", "section", "company", "round", "date", "tags", "extra", "summary", "answer", "file", "line",
}  # fmt: skip


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")}
    env["PYTHONUTF8"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@pytest.fixture
def bank_dir(tmp_path: Path) -> Path:
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "a.md").write_text(
        f"# Chapter\n## Section\n### Q. first\n{META}\n\nanswer $x^2$\n<mark>**总结**：sum</mark>\n"
        "### Q. second\n> **Date**: 2025-02-30 | **Level**: P7\nno summary here\n",
        encoding="utf-8",
    )
    (tmp_path / "broken.md").write_bytes(b"### Q. lost\n\xff\xfe\n")
    return tmp_path


def test_default_is_the_bundled_bank() -> None:
    result = check()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "    35  1-training/1.3 RLs.md\n" in out
    assert "     0  README.md\n" in out
    assert "175 questions in 29 files (173 with metadata, 169 with a summary)" in out
    assert "most common tags: Transformer (33), RL (30)," in out
    assert "0-foundations/2. Normalization.md:4: warning: no metadata line" in out
    assert out.count(": warning: ") == 8
    assert ": error: " not in out


def test_bundled_bank_as_json() -> None:
    result = check("--json", ROOT / "content")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"questions", "warnings", "errors", "notes"}
    assert len(report["questions"]) == 175
    assert all(set(q) == QUESTION_KEYS for q in report["questions"])
    assert all(set(p) == {"file", "line", "message"} for p in report["warnings"])
    assert len(report["warnings"]) == 8 and report["errors"] == []
    (deepseek,) = [
        q for q in report["questions"] if q["file"] == "6-major llms/6.2 DeepSeek.md" and q["line"] == 4
    ]
    assert deepseek["title"] == "DeepSeek-R1 相比其他大模型做了哪些优化？"
    assert deepseek["tags"] == ["DeepSeek-R1", "LLM", "优化"]
    assert (deepseek["chapter"], deepseek["section"], deepseek["extra"]) == ("DeepSeek LLMs", None, {})


def test_errors_fail_the_check_but_other_files_still_load(bank_dir: Path) -> None:
    result = check(bank_dir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{bank_dir}:"
    assert "     0  broken.md" in lines and "     2  part/a.md" in lines
    assert "part/a.md:8: warning: no summary: mark it with <mark>…</mark>" in lines
    assert "part/a.md:9: warning: date '2025-02-30' is not YYYY-MM-DD; kept as written" in lines
    assert "broken.md:2: error: not UTF-8 (byte 12); the file is skipped" in lines
    assert "2 questions in 2 files (2 with metadata, 1 with a summary)" in lines


def test_json_of_a_tmp_bank(bank_dir: Path) -> None:
    result = check(bank_dir, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    first, second = report["questions"]
    assert first == {
        "id": first["id"],
        "title": "first",
        "chapter": "Chapter",
        "section": "Section",
        "company": "美团",
        "round": "一面",
        "date": "2025-08-31",
        "tags": ["RL", "PPO"],
        "extra": {},
        "summary": "**总结**：sum",
        "answer": "answer $x^2$\n**总结**：sum",
        "file": "part/a.md",
        "line": 3,
    }
    assert (second["company"], second["date"], second["extra"], second["summary"]) == (
        None,
        "2025-02-30",
        {"Level": "P7"},
        None,
    )
    assert report["errors"] == [
        {"file": "broken.md", "line": 2, "message": "not UTF-8 (byte 12); the file is skipped"}
    ]
    assert {"file": "part/a.md", "line": 8, "message": "no summary: mark it with <mark>…</mark>"} in report[
        "warnings"
    ]


def test_explicit_file_of_any_extension_and_several_paths(
    bank_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    seed = tmp_path_factory.mktemp("seed") / "seed.txt"
    seed.write_text(f"### Q. from txt\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    result = check(seed, "--json")
    assert result.returncode == 0
    assert [(q["title"], q["file"]) for q in json.loads(result.stdout)["questions"]] == [
        ("from txt", "seed.txt")
    ]
    both = check(seed, bank_dir / "part")
    assert both.returncode == 0
    assert "3 questions in 2 files" in both.stdout


def test_no_questions_fails(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Just notes\n", encoding="utf-8")
    result = check(tmp_path)
    assert result.returncode == 1
    assert (
        "notes.md:1: warning: no questions (a question starts with a '### Q.' heading)"
        in result.stdout.splitlines()
    )
    assert result.stdout.splitlines()[-1] == (
        f"error: no questions in {tmp_path} (a question starts with a '### Q.' heading)"
    )
    missing = check(tmp_path / "nope")
    assert missing.returncode == 1
    assert f"{tmp_path / 'nope'}: error: no such file or directory\n" in missing.stdout  # no `:1`


def test_bank_hygiene_is_reported_per_line(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "### Q.\n"
        f"{META}\nanswer <mark>s</mark>\n"
        "### Q. unreadable metadata\n"
        "> Company Acme | Round 1\n\nthe answer <mark>s</mark>\n"
        "### Q. unknown fields\n"
        "> **Company**: 美团 | **Level**: P7 | **Source**: x\n\n$\\frac{1}{2}$ and $\\unknownmacro{x}$\n<mark>s</mark>\n"
        "### Q. again\n> **Level**: P8 | **Tags**: [a]\n\n<mark>s</mark>\n",
        encoding="utf-8",
    )
    result = check(tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 1  # the untitled question is an error
    assert "a.md:1: error: the question has no title; left out" in lines
    assert (
        "a.md:5: warning: metadata line not read: field names must be bold, "
        "as in > **Company**: 美团 | **Round**: 一面; it is left out"
    ) in lines
    assert [line for line in lines if ": info: " in line] == [
        "a.md:8: info: metadata field 'Level' is not one of Company, Round, Date, Tags; kept as extra (2 questions)",
        "a.md:8: info: metadata field 'Source' is not one of Company, Round, Date, Tags; kept as extra (1 question)",
        "a.md:11: info: formula shown as TeX source: $\\unknownmacro{x}$",
    ]
    assert "3 questions in 1 file (" in result.stdout
