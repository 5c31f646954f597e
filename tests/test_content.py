"""The bundled bank (content/, a copy of yuyouyu32/llm-interview at e453b03), pinned."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bot.config import BUNDLED_CONTENT
from bot.core.bank import LoadResult, load
from bot.core.model import Question

SEED = Path(__file__).parent / "data" / "000_826bf8616de27334.txt"  # an older copy of 6.2 DeepSeek.md

# Questions per file, as counted by hand in the corpus's SOURCE.md.
COUNTS = {
    "0-foundations/0. Attention.md": 16,
    "0-foundations/1. loss & gradients.md": 8,
    "0-foundations/2. Normalization.md": 6,
    "0-foundations/3. Numerical Precision.md": 4,
    "0-foundations/4. Tokenizer.md": 10,
    "0-foundations/5. regularization.md": 2,
    "0-foundations/6. position embedding.md": 3,
    "0-foundations/7. embedding.md": 3,
    "0-foundations/8. framework.md": 15,
    "1-training/1.1 pre-training.md": 2,
    "1-training/1.2 SFT.md": 13,
    "1-training/1.3 RLs.md": 35,
    "2-inference/2.1 parameters.md": 5,
    "2-inference/2.2 application.md": 4,
    "2-inference/2.3 RAG.md": 2,
    "3-evaluation/3.1 Hallucination.md": 3,
    "3-evaluation/3.2 benchmark.md": 1,
    "4-Infra/4.1 Acceleration.md": 7,
    "5-agent/5.1 foundations.md": 1,
    "5-agent/5.2 application.md": 7,
    "5-agent/5.3 RAG.md": 6,
    "6-major llms/6.1 chatgpt.md": 2,
    "6-major llms/6.2 DeepSeek.md": 5,
    "6-major llms/6.3 Qwen.md": 5,
    "7-case studies/7.1 normal.md": 7,
    "7-case studies/7.2 game.md": 2,
    "7-case studies/7.3 e-commerce.md": 1,
}

# Gaps in the upstream content, shipped unchanged: (file, line, start of the warning).
KNOWN_GAPS = {
    ("0-foundations/2. Normalization.md", 4, "no metadata line"),
    ("0-foundations/4. Tokenizer.md", 108, "no metadata line"),
    ("0-foundations/4. Tokenizer.md", 108, "no summary"),
    ("0-foundations/4. Tokenizer.md", 115, "no summary"),
    ("0-foundations/4. Tokenizer.md", 124, "no summary"),
    ("1-training/1.2 SFT.md", 49, "no summary"),
    ("6-major llms/6.2 DeepSeek.md", 109, "no summary"),
    ("6-major llms/6.3 Qwen.md", 41, "no summary"),
}


@pytest.fixture(scope="module")
def content() -> LoadResult:
    return load(BUNDLED_CONTENT)


def question_at(result: LoadResult, file: str, line: int) -> Question:
    (question,) = [q for q in result.bank.questions if q.file == file and q.line == line]
    return question


def is_known_gap(file: str, line: int, message: str) -> bool:
    return any((file, line) == (f, n) and message.startswith(start) for f, n, start in KNOWN_GAPS)


def test_every_bundled_file_parses_cleanly_listing_every_bad_file(content: LoadResult) -> None:
    on_disk = sorted(p.relative_to(BUNDLED_CONTENT).as_posix() for p in BUNDLED_CONTENT.rglob("*.md"))
    assert list(content.files) == on_disk
    bad: dict[str, list[str]] = {}
    for problem in content.errors:
        bad.setdefault(problem.file, []).append(f"error: {problem}")
    for problem in content.warnings:
        if not is_known_gap(problem.file, problem.line, problem.message):
            bad.setdefault(problem.file, []).append(f"warning: {problem}")
    per_file = Counter(q.file for q in content.bank.questions)
    for name, expected in COUNTS.items():
        if per_file[name] != expected:
            bad.setdefault(name, []).append(f"{per_file[name]} questions, expected {expected}")
    report = "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in sorted(bad.items()))
    assert not bad, f"{len(bad)} bad bundled files:\n{report}"


def test_exactly_175_questions_173_with_metadata(content: LoadResult) -> None:
    questions = content.bank.questions
    assert len(questions) == 175
    assert len(content.bank.by_id) == 175
    without_metadata = [p for p in content.warnings if p.message.startswith("no metadata line")]
    assert len(questions) - len(without_metadata) == 173
    assert sum(1 for q in questions if q.company or q.round or q.date or q.tags) == 173
    assert {p.file for p in content.warnings} | {p.file for p in content.errors} <= set(COUNTS)


def test_readme_fenced_example_is_not_a_question(content: LoadResult) -> None:
    assert "README.md" in content.files
    assert not [q for q in content.bank.questions if q.file == "README.md"]


def test_heading_variants_are_found(content: LoadResult) -> None:
    doubled = question_at(content, "0-foundations/4. Tokenizer.md", 80)  # ### ### Q.
    no_prefix = question_at(content, "1-training/1.3 RLs.md", 618)  # ### + metadata line
    no_space = question_at(content, "0-foundations/8. framework.md", 267)  # ### Q.为什么
    assert doubled.title == "现在的大模型使用的tokenizer是什么？"
    assert (no_prefix.title, no_prefix.tags) == (
        "PPO是on-policy的吗？如果是，为什么有ratio?",
        ("RL", "PPO", "on-policy", "ratio"),
    )
    assert no_space.title == "为什么现在大多数 LLM 用的是 Causal LM?"
    assert question_at(content, "0-foundations/1. loss & gradients.md", 166).title.startswith(
        "为什么大模型损失函数"
    )


def test_no_mark_tag_or_oaicite_survives(content: LoadResult) -> None:
    leftovers = [
        f"{q.file}:{q.line}"
        for q in content.bank.questions
        if re.search(
            r"</?mark|oaicite|contentReference", f"{q.title}\n{q.summary}\n{q.answer}", re.IGNORECASE
        )
    ]
    assert leftovers == []


def test_every_mark_variant_resolves(content: LoadResult) -> None:
    closed_by_second_mark = question_at(content, "6-major llms/6.2 DeepSeek.md", 4).summary
    block_around_list = question_at(content, "0-foundations/1. loss & gradients.md", 5).summary
    indented = question_at(content, "0-foundations/1. loss & gradients.md", 166).summary
    multiline_second_mark = question_at(content, "1-training/1.3 RLs.md", 923).summary
    two_marks = question_at(content, "1-training/1.3 RLs.md", 400).summary
    closed_at_end_of_file = question_at(content, "6-major llms/6.1 chatgpt.md", 38).summary
    assert closed_by_second_mark and closed_by_second_mark.startswith("**总结**：DeepSeek-R1 引入 Cold-Start")
    assert closed_by_second_mark.endswith("典型代表。")
    assert (
        block_around_list
        and block_around_list.splitlines()[0] == "- 主流大模型预训练时几乎都用 **交叉熵损失**（= NLL）。 "
    )
    assert len(block_around_list.splitlines()) == 4
    assert (
        indented
        == "交叉熵是为分类量身定做的，能直接优化概率分布并避免梯度消失；MSE 更适合回归任务，硬用在分类上会导致训练缓慢甚至失败。"
    )
    assert multiline_second_mark and multiline_second_mark.startswith("**Note**：**GRPO**")
    assert multiline_second_mark.endswith("PPO 往往更稳。") and multiline_second_mark.count("\n") == 2
    assert two_marks and two_marks.count("\n\n") == 1 and two_marks.startswith("**Note**：在 LLM 的 RLHF 中")
    assert closed_at_end_of_file and closed_at_end_of_file.endswith("以恢复模型平衡与诚恳。")
    assert sum(1 for q in content.bank.questions if q.summary) == 175 - 6


def test_metadata_variants_of_the_corpus(content: LoadResult) -> None:
    space_separated = question_at(content, "0-foundations/3. Numerical Precision.md", 39)
    no_quote_mark = question_at(content, "2-inference/2.3 RAG.md", 6)
    loose_date = question_at(content, "0-foundations/1. loss & gradients.md", 298)
    assert (space_separated.date, space_separated.tags[0]) == ("2025-08-01", "数值精度")
    assert (no_quote_mark.company, no_quote_mark.round) == ("蔚来", "算法工程师 一面")
    assert loose_date.date == "2025-09-2"
    nones = question_at(content, "1-training/1.3 RLs.md", 1135)
    assert (nones.company, nones.round, nones.date, nones.tags) == (None, None, None, ("RL", "GRPO"))


def test_answers_are_the_source_lines_byte_for_byte(content: LoadResult) -> None:
    """Every answer line is a line of its file, or one with mark tags and oaicite artifacts taken
    out: math and everything else intact."""
    mangled = []
    for question in content.bank.questions:
        source = (BUNDLED_CONTENT / question.file).read_text(encoding="utf-8").split("\n")
        allowed = set(source) | {
            re.sub(r"</?mark>|:contentReference\[oaicite:\d+\]\{index=\d+\}", "", line) for line in source
        }
        mangled += [
            f"{question.file}:{question.line}: {line!r}"
            for line in question.answer.split("\n")
            if line not in allowed
        ]
    assert mangled == []
    math = question_at(content, "0-foundations/1. loss & gradients.md", 166).answer
    assert r"$(0.9-1)^2 + (0.05-0)^2 + (0.05-0)^2$" in math


def test_chapter_section_and_image(content: LoadResult) -> None:
    pipeline = question_at(content, "6-major llms/6.2 DeepSeek.md", 37)
    assert (pipeline.chapter, pipeline.section) == ("DeepSeek LLMs", None)
    assert pipeline.images == (str((BUNDLED_CONTENT / "6-major llms/imgs/DeepSeek-R1.png").resolve()),)
    assert "![GRPO](./imgs/DeepSeek-R1.png)" in pipeline.answer
    rlhf = question_at(content, "1-training/1.3 RLs.md", 618)
    assert (
        rlhf.section
        == "1. [RLHF](https://arxiv.org/abs/2204.05862) (Reinforcement Learning from Human Feedback)"
    )


def test_seed_questions_match_their_bundled_counterparts(content: LoadResult) -> None:
    seed = load(SEED)
    assert seed.errors == ()
    assert [p.message for p in seed.warnings] == ["image ./imgs/DeepSeek-R1.png not found"]
    assert len(seed.bank) == 2
    for old in seed.bank.questions:
        new = content.bank.get(old.id)
        assert new is not None, old.title
        assert new.file == "6-major llms/6.2 DeepSeek.md"
        fields = ("title", "company", "round", "date", "tags", "extra", "summary", "chapter", "section")
        assert [getattr(old, f) for f in fields] == [getattr(new, f) for f in fields]
