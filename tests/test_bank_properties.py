"""Properties of the bank parser over generated text (hypothesis)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.bank import normalise_title, parse_text

NOWHERE = Path("/nonexistent-bank-dir/bank.md")  # images resolve to files that do not exist
META = "> **Company**: 美团 | **Round**: 一面 | **Date**: 2025-08-31 | **Tags**: [RL, PPO]"
ID = re.compile(r"q[0-9a-f]{10}")

# Pieces of the markdown a bank is made of, so that generated text hits the parser's cases.
FRAGMENTS = [
    "### Q. ", "### Q.", "### ### Q. ", "### ", "## ", "# ", "#### Q. ", "```", "~~~", "    ", "\t",
    "<mark>", "</mark>", "`<mark>`", "> ", "**Company**: ", "**Round**：", "**Date**: 2025-13-01",
    "**Tags**: [a, b]", "**Company:** ", " | ", "｜", "\n", "\n\n", "\r\n", "\r", "$$", "\\[", "$x$",
    "![i](img.png)", "![w](https://x/y.png)", "![u](../../etc/passwd)", "[r]: /url", "![r][r]",
    "| a | b |\n|---|---|", "- ", "1. ", "---", "===", "`", "\ufeff", "\0", "\u2028",
    ":contentReference[oaicite:1]{index=1}", "None", "<div>", "<!--", "-->",
]  # fmt: skip
markdownish = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=60).map("".join)

# Text that can neither open nor close a fence nor start a heading: questions come only from
# the generator's heading blocks, so their number and lines are known.
plain = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="#`~\u2028\u2029\x85"),
    max_size=30,
)
prose_line = st.one_of(
    plain, st.sampled_from(["<mark>", "</mark>", META, "---", "===", "- a", "> b", "|a|b|"])
)
heading = st.builds("{}{}".format, st.sampled_from(["### Q. ", "### Q.", "### ### Q. ", "  ### Q. "]), plain)
fenced = st.builds(
    lambda fence, lines: "\n".join([fence, *lines, fence]),
    st.sampled_from(["```", "~~~", "````"]),
    st.lists(st.one_of(plain, st.just("### Q. in code"), st.just(META)), max_size=4),
)
block = st.one_of(
    heading.map(lambda line: ("question", line)),
    st.lists(prose_line, max_size=4).map(lambda lines: ("prose", "\n".join(lines))),
    fenced.map(lambda text: ("code", text)),
)


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(), markdownish))
def test_arbitrary_text_never_crashes_and_keeps_invariants(text: str) -> None:
    questions, problems = parse_text(text, NOWHERE)
    line_count = len(re.split(r"\r\n?|\n", text))
    assert all(ID.fullmatch(q.id) for q in questions)
    assert len({q.id for q in questions}) == len(questions)
    assert all(1 <= q.line <= line_count for q in questions)
    assert all(1 <= p.line <= line_count for p in problems)
    assert all(q.images == () for q in questions)


@settings(deadline=None, max_examples=200)
@given(st.lists(block, max_size=15))
def test_every_question_heading_outside_code_is_exactly_one_question(blocks: list[tuple[str, str]]) -> None:
    lines: list[str] = []
    expected: list[int] = []
    untitled: list[int] = []  # an error each, and left out
    for kind, text in blocks:
        if kind == "question":
            (expected if text.split("Q.", 1)[1].strip() else untitled).append(len(lines) + 1)
        lines += text.split("\n")
    questions, problems = parse_text("\n".join(lines), NOWHERE)
    assert [q.line for q in questions] == expected
    assert [p.line for p in problems if "no title" in p.message] == untitled


title_text = st.text(
    st.characters(whitelist_categories=("L", "N", "Zs"), whitelist_characters="*_`?？()-+.,"),
    min_size=1,
    max_size=25,
).filter(lambda t: normalise_title(t))
titles = st.lists(title_text, min_size=1, max_size=8, unique_by=normalise_title)


def bank(question_titles: list[str], answer: str) -> str:
    return "".join(
        f"### Q. {t}\n{META}\n\n{answer} {i}\n<mark>s</mark>\n" for i, t in enumerate(question_titles)
    )


@settings(deadline=None)
@given(titles, st.data())
def test_ids_are_stable_under_reordering_renaming_and_answer_edits(
    question_titles: list[str], data: st.DataObject
) -> None:
    before, _ = parse_text(bank(question_titles, "answer"), "a.md")
    reordered = data.draw(st.permutations(question_titles))
    new_name = data.draw(st.sampled_from(["b.md", "moved/a.md", "deep/er/bank.txt"]))
    after, _ = parse_text(bank(reordered, "an edited answer"), new_name)
    assert {q.title: q.id for q in before} == {q.title: q.id for q in after}
    assert len({q.id for q in before}) == len(question_titles)
