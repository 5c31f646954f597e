"""The bank parser on small hand-written banks: one behaviour per test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.bank import Bank, Problem, load, normalise_title, parse_text
from bot.core.model import Question

META = "> **Company**: 美团 | **Round**: 一面 | **Date**: 2025-08-31 | **Tags**: [RL, PPO]"


def parse(
    text: str, file: str | Path = "bank.md", root: Path | None = None
) -> tuple[list[Question], list[Problem]]:
    return parse_text(text, file, root)


def messages(problems: list[Problem]) -> list[str]:
    return [f"{p.line}: {p.message}" for p in problems]


def test_question_heading_variants_all_start_questions() -> None:
    text = "\n".join(
        [
            "### Q. spaced",
            "### Q.unspaced",
            "### ### Q. doubled",
            "### no prefix but metadata",
            "",
            META,
            "### Q．full-width stop",
        ]
    )
    questions, _ = parse(text)
    assert [q.title for q in questions] == [
        "spaced",
        "unspaced",
        "doubled",
        "no prefix but metadata",
        "full-width stop",
    ]
    assert [q.line for q in questions] == [1, 2, 3, 4, 7]


def test_headings_in_code_or_of_other_levels_are_answer_text() -> None:
    text = "\n".join(
        [
            "### Q. real",
            "```markdown",
            "### Q. fenced",
            "```",
            "~~~",
            "### Q. tilde fenced",
            "~~~",
            "",
            "    ### Q. indented code",
            "",
            "#### Q. level four",
            "### a plain level-3 heading",
        ]
    )
    questions, _ = parse(text)
    assert [q.title for q in questions] == ["real"]
    assert "### Q. fenced" in questions[0].answer
    assert questions[0].answer.endswith("### a plain level-3 heading")


def test_question_headings_in_lists_and_quotes_still_count() -> None:
    text = "- item\n  ### Q. in a list\n> ### Q. in a quote\n> > **Company**: A\n"
    questions, _ = parse(text)
    assert [(q.title, q.line) for q in questions] == [("in a list", 2), ("in a quote", 3)]
    assert questions[1].company == "A"


def test_question_right_after_a_mark_line_is_not_swallowed() -> None:
    # `<mark>` alone on a line starts an HTML block in CommonMark; the heading must survive it.
    text = "### Q. one\n<mark>\nsummary\n</mark>\n### Q. two\n<div>\n### Q. three\n"
    assert [q.title for q in parse(text)[0]] == ["one", "two", "three"]


def test_level_one_and_two_headings_end_questions_and_name_chapter_and_section() -> None:
    text = "\n".join(
        [
            "# Chapter",
            "intro",
            "### Q. first",
            "answer one",
            "## Section A",
            "section prose, not an answer",
            "### Q. second",
            "answer two",
            "# Next chapter",
            "### Q. third",
        ]
    )
    first, second, third = parse(text)[0]
    assert (first.chapter, first.section, first.answer) == ("Chapter", None, "answer one")
    assert (second.chapter, second.section, second.answer) == ("Chapter", "Section A", "answer two")
    assert (third.chapter, third.section) == ("Next chapter", None)


def test_setext_underline_ends_the_question_with_a_warning() -> None:
    questions, problems = parse("### Q. x\n<mark>s</mark>\n\ntext\n---\nafter\n### Q. y\n")
    assert [(q.answer, q.section) for q in questions] == [("s", None), ("", "text")]
    assert any(p.line == 5 and "blank line before it" in p.message for p in problems)


@pytest.mark.parametrize(
    "line",
    [
        "> **Company**: 美团 | **Round**: 一面 | **Date**: 2025-08-31 | **Tags**: [RL, PPO]",
        "> **Company**：美团 ｜ **Round**：一面 ｜ **Date**：2025-08-31 ｜ **Tags**：[RL, PPO]",
        "**Company**: 美团 **Round**: 一面 **Date**: 2025-08-31 **Tags**: RL, PPO",
        "> **Tags**: [RL，PPO] | **Date**: 2025-08-31 | **Round**: 一面 | **Company**: 美团",
        ">**Company:** 美团 | **Round:** 一面 | **Date:** 2025-08-31 | **Tags:** [RL, PPO]",
    ],
)
def test_metadata_line_variants(line: str) -> None:
    (question,), problems = parse(f"### Q. t\n{line}\n\nbody <mark>s</mark>\n")
    assert (question.company, question.round, question.date, question.tags) == (
        "美团",
        "一面",
        "2025-08-31",
        ("RL", "PPO"),
    )
    assert question.answer == "body s"
    assert problems == []


def test_none_and_empty_metadata_values_are_absent_and_unknown_fields_kept() -> None:
    line = "> **Company**: None | **Round**: | **Date**: None | **Tags**: [] | **Level**: P7 | **Note**: none"
    (question,), _ = parse(f"### Q. t\n{line}\n<mark>s</mark>\n")
    assert (question.company, question.round, question.date, question.tags) == (None, None, None, ())
    assert dict(question.extra) == {"Level": "P7"}


def test_a_bold_line_without_known_fields_is_not_metadata() -> None:
    questions, problems = parse("### Q. t\n**Note**: first line\n<mark>s</mark>\n### heading\n**Note**: x\n")
    assert len(questions) == 1
    assert questions[0].answer.startswith("**Note**: first line")
    assert any("no metadata" in p.message for p in problems)


def test_malformed_date_is_kept_with_a_warning_and_loose_dates_pass() -> None:
    text = (
        "### Q. a\n> **Date**: 2025-13-45\n<mark>s</mark>\n"
        "### Q. b\n> **Date**: 2025-09-2\n<mark>s</mark>\n"
        "### Q. c\n> **Date**: last spring\n<mark>s</mark>\n"
    )
    questions, problems = parse(text)
    assert [q.date for q in questions] == ["2025-13-45", "2025-09-2", "last spring"]
    assert messages(problems) == [
        "2: date '2025-13-45' is not YYYY-MM-DD; kept as written",
        "8: date 'last spring' is not YYYY-MM-DD; kept as written",
    ]


def test_metadata_field_given_twice_keeps_the_first() -> None:
    (question,), problems = parse("### Q. t\n> **Company**: A | **Company**: B\n<mark>s</mark>\n")
    assert question.company == "A"
    assert messages(problems) == ["2: Company is given twice; the first is kept"]


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ("text <mark>**总结**：closed</mark> after", "**总结**：closed"),
        ("<mark>**总结**：closed by a second mark<mark>", "**总结**：closed by a second mark"),
        ("<mark>\n- a\n- b\n</mark>", "- a\n- b"),
        ("<mark>one</mark> and <mark>two</mark>", "one\n\ntwo"),
        ("  <mark>indented</mark>", "indented"),
        ("<MARK>upper case</MARK>", "upper case"),
    ],
)
def test_summary_variants(body: str, summary: str) -> None:
    (question,), problems = parse(f"### Q. t\n{META}\n\n{body}\n")
    assert question.summary == summary
    assert "mark>" not in question.answer.lower()
    assert problems == []


def test_unclosed_mark_runs_to_the_end_of_the_question_with_a_warning() -> None:
    (question, _), problems = parse(
        f"### Q. t\n{META}\nx\n<mark>summary\nmore\n### Q. next\n{META}\n<mark>s</mark>"
    )
    assert question.summary == "summary\nmore"
    assert question.answer == "x\nsummary\nmore"
    assert messages(problems) == [
        "4: <mark> is not closed before the question ends; the summary runs to its end"
    ]


def test_no_mark_means_no_summary_and_a_warning() -> None:
    (question,), problems = parse(f"### Q. t\n{META}\nplain answer\n")
    assert question.summary is None
    assert messages(problems) == ["1: no summary: mark it with <mark>…</mark>"]


def test_mark_tags_inside_code_are_literal() -> None:
    text = f"### Q. t\n{META}\nuse `<mark>` for it\n```html\n<mark>code</mark>\n```\n<mark>real</mark>\n"
    (question,), _ = parse(text)
    assert question.summary == "real"
    assert "use `<mark>` for it" in question.answer
    assert "<mark>code</mark>" in question.answer


def test_stray_closing_mark_is_dropped_with_a_warning() -> None:
    (question,), problems = parse(f"### Q. t\n{META}\ntext</mark> <mark>s</mark>\n")
    assert question.answer == "text s"
    assert messages(problems) == ["3: </mark> without an opening <mark>; dropped"]


def test_answer_keeps_math_and_code_byte_for_byte_and_drops_trailing_rules() -> None:
    math = [
        r"行内 $\frac{a_1}{b^2}$ 与 \(x_{t-1}\)，以及 \[\sum_i p_i\]",
        "$$",
        r"\mathcal{L} = -\sum_{t} \log p_\theta(x_t \mid x_{<t})  ",
        "$$",
        "```python",
        "x = a*b  # *not emphasis*",
        "```",
        "| a | b |",
        "|---|---|",
        "| $|x|$ | 2 |",
    ]
    text = "\n".join(["### Q. t", META, "", *math, "", "<mark>s</mark>", "", "---", "", ""])
    (question,), _ = parse(text)
    assert question.answer == "\n".join([*math, "", "s"])


def test_oaicite_artifacts_are_removed_everywhere() -> None:
    cite = ":contentReference[oaicite:2]{index=2}"
    text = f"### Q. title{cite}\n{META}\nanswer{cite}。\n<mark>sum{cite}</mark>\n"
    (question,), _ = parse(text)
    assert (question.title, question.answer, question.summary) == ("title", "answer。\nsum", "sum")


def test_images_resolve_against_the_file_and_missing_ones_warn(tmp_path: Path) -> None:
    (tmp_path / "ch" / "imgs").mkdir(parents=True)
    (tmp_path / "ch" / "imgs" / "a b.png").write_bytes(b"png")
    (tmp_path / "secret.png").write_bytes(b"png")
    text = "\n".join(
        [
            "### Q. t",
            META,
            "![ok](./imgs/a%20b.png)",
            "![gone](imgs/gone.png)",
            "![web](https://example.org/x.png)",
            "![up](../secret.png)",
            "<mark>s</mark>",
        ]
    )
    (question,), problems = parse(text, tmp_path / "ch" / "bank.md", root=tmp_path / "ch")
    assert question.images == (str((tmp_path / "ch" / "imgs" / "a b.png").resolve()),)
    assert "https://example.org/x.png" in question.answer
    assert messages(problems) == [
        "4: image imgs/gone.png not found",
        "6: image ../secret.png is outside the bank's directory; ignored",
    ]


def test_ids_come_from_the_normalised_title() -> None:
    (a,), _ = parse(f"### Q. **Causal** LM  `vs`  ＭＬＭ？\n{META}\nanswer one <mark>s</mark>")
    (b,), _ = parse(f"### Q.causal lm vs mlm?\n{META}\na different answer <mark>t</mark>", "moved/x.md")
    (c,), _ = parse(f"### Q. causal lm vs clm?\n{META}\nanswer one <mark>s</mark>")
    assert re.fullmatch(r"q[0-9a-f]{10}", a.id)
    assert a.id == b.id != c.id
    assert normalise_title("**Causal** LM  `vs`  ＭＬＭ？") == "causal lm vs mlm?"
    assert normalise_title("top_k and __init__ and _x_") == "top_k and init and x"


def test_duplicate_titles_warn_and_get_distinct_content_ids() -> None:
    block = "### Q. same\n" + META + "\n{}\n<mark>s</mark>\n"
    text = block.format("answer one") + block.format("answer two") + block.format("answer one")
    questions, problems = parse(text)
    assert [q.answer for q in questions] == ["answer one\ns", "answer two\ns", "answer one\ns"]
    assert len({q.id for q in questions}) == 3
    assert messages(problems) == [
        "1: same title as bank.md:5; their ids depend on their content",
        "5: same title as bank.md:1; their ids depend on their content",
        "9: exact copy of bank.md:1",
    ]
    (unique,), _ = parse(block.format("answer one"))
    assert unique.id not in {q.id for q in questions}
    edited, _ = parse(block.format("answer one") + block.format("answer two, edited"))
    assert edited[0].id == questions[0].id != edited[1].id


def test_empty_answer_warns_and_a_question_without_title_is_an_error_left_out(tmp_path: Path) -> None:
    (question,), problems = parse("### Q. 标题\n")
    assert question.answer == ""
    assert "1: the question has no answer" in messages(problems)
    (tmp_path / "a.md").write_text(
        f"### Q.\n{META}\nanswer <mark>s</mark>\n### Q. kept\nb\n", encoding="utf-8"
    )
    result = load(tmp_path)
    assert [q.title for q in result.bank.questions] == ["kept"]  # never served as `❓ ****`
    assert [str(p) for p in result.errors] == ["a.md:1: the question has no title; left out"]


def test_load_directory_recursive_sorted_and_file_relative(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "z.md").write_text(f"### Q. z\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    (tmp_path / "a.md").write_text(f"### Q. a\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("### Q. not a bank file\n", encoding="utf-8")
    (tmp_path / ".hidden" / "h.md").write_text("### Q. hidden\n", encoding="utf-8")
    result = load(tmp_path)
    assert [(q.title, q.file) for q in result.bank.questions] == [("a", "a.md"), ("z", "b/z.md")]
    assert result.files == ("a.md", "b/z.md")
    assert result.warnings == result.errors == ()


def test_load_explicit_file_of_any_extension(tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text(f"### Q. from a txt\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    result = load(seed)
    assert [(q.title, q.file) for q in result.bank.questions] == [("from a txt", "seed.txt")]


def test_unreadable_and_non_utf8_files_are_errors_and_the_rest_loads(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(f"### Q. good\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("### Q. ok\nline two\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    result = load(tmp_path)
    assert [q.title for q in result.bank.questions] == ["good"]
    assert [str(p) for p in result.errors] == [
        "dangling.md:1: cannot read the file: No such file or directory",
        "latin1.md:3: not UTF-8 (byte 22); the file is skipped",
    ]


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    text = f"\ufeff# Chapter\r\n### Q. crlf\r\n{META}\r\n\r\nline one\r\n<mark>s</mark>\r\n"
    (tmp_path / "win.md").write_bytes(text.encode("utf-8"))
    result = load(tmp_path / "win.md")
    (question,) = result.bank.questions
    assert (question.chapter, question.title, question.line, question.company) == (
        "Chapter",
        "crlf",
        2,
        "美团",
    )
    assert question.answer == "line one\ns"
    assert result.warnings == ()


def test_empty_files_and_files_without_questions_warn_but_readmes_do_not(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Notes\n### not a question\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# About\n```\n### Q. example\n```\n", encoding="utf-8")
    result = load(tmp_path)
    assert len(result.bank) == 0
    assert [str(p) for p in result.warnings] == [
        "empty.md:1: empty file",
        "notes.md:1: no questions (a question starts with a '### Q.' heading)",
    ]


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    assert [p.message for p in load(tmp_path / "nope").errors] == ["no such file or directory"]
    assert [str(p) for p in load(tmp_path).warnings] == [".: no *.md files in this directory"]


def test_ids_are_unique_across_files_of_one_load(tmp_path: Path) -> None:
    for name, answer in (("a.md", "one"), ("b.md", "two")):
        (tmp_path / name).write_text(f"### Q. shared\n{META}\n{answer} <mark>s</mark>\n", encoding="utf-8")
    result = load(tmp_path)
    assert len(result.bank.by_id) == 2
    assert [str(p) for p in result.warnings] == [
        "a.md:1: same title as b.md:1; their ids depend on their content",
        "b.md:1: same title as a.md:1; their ids depend on their content",
    ]


def test_bank_lookups() -> None:
    questions, _ = parse(
        "### Q. Attention is all\n> **Company**: 阿里 | **Tags**: [Transformer]\n<mark>s</mark>\n"
        "### Q. PPO clip\n> **Company**: 美团 | **Tags**: [RL, PPO]\n<mark>s</mark>\n"
    )
    bank = Bank(questions)
    assert bank.get(questions[1].id) is questions[1]
    assert [q.title for q in bank.matching("ppo")] == ["PPO clip"]
    assert [q.title for q in bank.matching("阿里")] == ["Attention is all"]
    assert [q.title for q in bank.matching("is all")] == ["Attention is all"]
    assert bank.tag_counts() == {"Transformer": 1, "RL": 1, "PPO": 1}


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("> Company Acme | Round 1", "field names must be bold"),
        ("> **Company** Acme | **Round** 1", "each bold field name needs a colon"),
        ("> Company: Acme | **Round**: 1", "it must start with a field"),
    ],
)
def test_an_unreadable_metadata_line_is_reported_at_its_line_and_left_out(line: str, what: str) -> None:
    (question,), problems = parse(f"### Q. t\n{line}\n\nthe answer <mark>s</mark>\n")
    assert question.answer == "the answer s"  # not `│ Company Acme | Round 1`
    assert [p.line for p in problems if what in p.message] == [2]
    assert not any("no metadata line" in p.message for p in problems)


def test_a_later_bold_field_without_a_colon_is_reported_and_left_out_of_the_value_before_it() -> None:
    (question,), problems = parse(
        "### Q. t\n> **Company**: Acme | **Round** 一面 | **Tags**: [x]\n\nthe answer <mark>s</mark>\n"
    )
    assert (question.company, question.round, question.tags) == ("Acme", None, ("x",))
    assert [(p.line, p.message) for p in problems if "colon" in p.message] == [
        (2, "each bold field name needs a colon, as in **Round**: …; Round is left out")
    ]


def test_an_answer_that_only_mentions_a_field_later_is_untouched() -> None:
    (question,), problems = parse("### Q. t\nThe round trip time: 5 ms | **Company** here\n<mark>s</mark>\n")
    assert question.answer.startswith("The round trip time")
    assert any("no metadata line" in p.message for p in problems)


def test_tags_and_companies_differing_in_case_space_or_width_are_one(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "".join(
            f"### Q. q{index}\n> **Company**: {company} | **Tags**: [{tags}]\n<mark>s</mark>\n"
            for index, (company, tags) in enumerate(
                [
                    ("上海 AI Lab", "LLM, RL"),
                    ("上海AI Lab", "llm"),
                    ("上海AI Lab", "ＬＬＭ, rl"),
                    ("字节", "RL"),
                ]
            )
        ),
        encoding="utf-8",
    )
    bank = load(tmp_path).bank
    assert bank.company_counts() == {"上海AI Lab": 3, "字节": 1}  # the most common spelling
    assert bank.tag_counts() == {"LLM": 3, "RL": 3}  # a tie goes to the first spelling
    assert [q.title for q in bank.matching("上海 ai lab")] == ["q0", "q1", "q2"]
    assert [q.title for q in bank.matching("ｌｌｍ")] == ["q0", "q1", "q2"]


def test_an_aliases_table_merges_other_spellings(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "### Q. one\n> **Company**: 字节 | **Tags**: [RLHF]\n<mark>s</mark>\n"
        "### Q. two\n> **Company**: ByteDance | **Tags**: [强化学习, rl]\n<mark>s</mark>\n",
        encoding="utf-8",
    )
    (tmp_path / "aliases.toml").write_text(
        '"字节跳动" = ["字节", "bytedance"]\nRL = "强化学习"\n', encoding="utf-8"
    )
    result = load(tmp_path)
    assert result.errors == ()
    assert result.bank.company_counts() == {"字节跳动": 2}
    assert result.bank.tag_counts() == {"RLHF": 1, "RL": 1}  # 强化学习 and rl are one tag of the question
    assert [q.title for q in result.bank.matching("字节")] == ["one", "two"]
    # a chat's `tags` setting (the daily pool and its check) takes any spelling or alias too
    assert [q.title for q in result.bank.with_labels(["bytedance ", "rlhf"])] == ["one", "two"]
    assert [q.title for q in result.bank.with_labels(["ＲＬ"])] == ["two"]
    assert result.bank.knows_label("字节") and result.bank.knows_label("强化学习")
    assert not result.bank.knows_label("Quantum")
    assert (
        result.bank.merged_key("ByteDance") == result.bank.merged_key("字节跳动") == "字节跳动"
    )  # keys: casefolded, no spaces


def test_a_broken_aliases_table_is_an_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(f"### Q. one\n{META}\n<mark>s</mark>\n", encoding="utf-8")
    (tmp_path / "aliases.toml").write_text('a = "b"\n字节跳动 = "字节"\n', encoding="utf-8")
    result = load(tmp_path)
    [error] = result.errors
    assert (error.file, error.line) == ("aliases.toml", 2)
    assert 'quote names other than ASCII letters and digits: "字节跳动" = "字节"' in error.message
    assert len(result.bank) == 1
