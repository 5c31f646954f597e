"""Markdown banks → Questions (the parser), and the Bank the rest of the core reads.

A bank is markdown as people write it on GitHub:

    # Chapter
    ## Section
    ### Q. The question?
    > **Company**: 美团 | **Round**: 一面 | **Date**: 2025-08-31 | **Tags**: [RL, PPO]

    The answer: any markdown. <mark>**总结**: the summary.</mark>

The structure (headings, code blocks, the block after a heading) comes from markdown-it-py's
block token stream, so nothing inside a fenced or indented code block is ever a heading. The
answer is sliced from the source lines, so math and everything else survives byte for byte.

Where a question starts: a level-3 heading that begins with `Q.` (also `Q.` with no space and the
doubled `### ### Q.`), or any level-3 heading whose next block is a metadata line. It ends at the
next question or at a heading of level 1 or 2 (a setext `---` under text is one; it gets a
warning). Headings count wherever they are (in a list item or a quote too), except in code.

Ids: `q` + the first 10 hex digits of sha1(normalised title), where normalising is Unicode NFKC,
casefolding, dropping emphasis marks and backticks, and collapsing whitespace. So an id survives
renaming, moving and reordering files and editing the answer. Questions sharing a normalised title
get a warning and ids hashed from their title, metadata and answer instead (exact copies are
numbered on top).

Summary: the text inside `<mark>…</mark>`; a second `<mark>` closes an open one (the usual
mistake), and a mark still open when the question ends runs to its end (with a warning).
Several marks are joined with a blank line. Tags inside code are literal text.

Metadata: bold `Company`, `Round`, `Date`, `Tags` (any case, any order, `|`, `｜` or spaces
between, ASCII or full-width colon inside or after the bold, with or without `>`); `None` or empty
is absent; other bold fields go to `extra`. A date is fine as YYYY-MM-DD, also with one-digit
month or day, `/` or `.`, or without the day; anything else is kept as written, with a warning.

A level-3 `Q.` heading whose next block mentions the fields but cannot be read (`> Company Acme |
Round 1`) gets a warning at that line saying what is wrong, and the line stays out of the answer.
A question without a title is an error and is left out. Metadata fields other than the four are
kept in `extra` and listed once per bank (an info note).

Tags and companies that differ only by case, spaces or character width (`LLM`/`llm`,
`上海 AI Lab`/`上海AI Lab`) are one name, spelled as most questions spell it. An optional
`aliases.toml` in the bank's directory merges the rest: `"字节跳动" = "字节"` (or a list of
spellings; TOML wants names other than ASCII quoted) shows every `字节` as `字节跳动`.

Images: local ones that exist inside the bank's directory become `Question.images` (absolute);
missing ones, and ones outside the directory (which the bot must never upload), are warnings.

A file without questions is a warning, except a README, LICENSE, NOTICE, CHANGELOG or
CONTRIBUTING file: those are documentation by convention.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import tomllib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.core.model import Question


def name_key(name: str) -> str:
    """What two spellings of one tag or company share: NFKC (width), casefolded, without spaces."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


class Bank:
    """An immutable set of questions, in bank order, with lookups the commands need."""

    def __init__(self, questions: Iterable[Question], aliases: dict[str, str] | None = None) -> None:
        self.questions: tuple[Question, ...] = tuple(questions)
        self.by_id = MappingProxyType({q.id: q for q in self.questions})
        # name key → the merged name, so that a filter by any spelling finds the merged one
        self.aliases = MappingProxyType(dict(aliases or {}))
        # merged key of each tag and company → its questions in bank order: filters look up, not scan
        by_label: dict[str, list[Question]] = {}
        for q in self.questions:
            for label in {name_key(label) for label in (*q.tags, q.company or "") if label}:
                by_label.setdefault(label, []).append(q)
        self._by_label = {label: tuple(found) for label, found in by_label.items()}

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, question_id: str) -> Question | None:
        return self.by_id.get(question_id)

    def matching(self, words: str) -> list[Question]:
        """Questions whose tag or company equals `words`, else whose title contains it (casefolded)."""
        needle = words.strip().casefold()
        if not needle:
            return list(self.questions)
        exact = self._by_label.get(self.merged_key(needle))
        return list(exact) if exact else [q for q in self.questions if needle in q.title.casefold()]

    def knows_label(self, name: str) -> bool:
        """Whether some question has this tag or company, in any spelling or alias of it."""
        return self.merged_key(name) in self._by_label

    def with_labels(self, names: Iterable[str]) -> list[Question]:
        """Questions having any of these tags or companies (any spelling or alias), in bank order."""
        found: set[str] = set()
        for name in names:
            found.update(q.id for q in self._by_label.get(self.merged_key(name), ()))
        return [q for q in self.questions if q.id in found]

    def merged_key(self, name: str) -> str:
        """The key a tag or company of any spelling (or alias) is merged under; compare these."""
        return name_key(self.aliases.get(name_key(name), name))

    def tag_counts(self) -> Counter[str]:
        return Counter(t for q in self.questions for t in q.tags)

    def company_counts(self) -> Counter[str]:
        return Counter(q.company for q in self.questions if q.company)


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the root that was loaded, posix separators
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    @property
    def location(self) -> str:
        """`file:line`, or the file alone when the problem is with the whole path (line 0)."""
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class LoadResult:
    bank: Bank
    warnings: tuple[Problem, ...]
    errors: tuple[Problem, ...]
    files: tuple[str, ...] = ()  # every file read or tried, relative to the root
    notes: tuple[Problem, ...] = ()  # worth knowing, nothing wrong: unknown metadata fields


def markdown_parser() -> MarkdownIt:
    """The markdown-it configuration banks are read with (the parse bench uses the same one).

    Raw HTML is off so that no HTML block swallows the heading after it (a `<mark>` alone on a
    line would start one). Inline parsing is off: titles are kept as written, and images are found
    by running the inline parser on just the paragraphs that contain `![`.
    """
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable("inline")


_MARKDOWN = markdown_parser()  # reusable: parse() keeps its state in the call

# Files conventionally holding documentation: no "no questions" warning for them.
_DOCUMENTATION_STEMS = frozenset({"readme", "license", "notice", "changelog", "contributing"})

_NEWLINE = re.compile(r"\r\n?")  # what markdown-it counts as a line break, so line numbers agree
_OAICITE = re.compile(r":?contentReference\[oaicite:\d+\]\{index=\d+\}")
_QUESTION_PREFIX = re.compile(r"(?:#+[ \t]+)*Q[.．][ \t]*")
# `**Name**:`, `**Name** ：` or `**Name:**`; the value runs to the next field. Linear by
# construction: no two parts of the pattern can match the same character, so nothing backtracks
# (the name's spaces are stripped afterwards; a pattern that matched them apart was cubic).
_FIELD = re.compile(r"\*\*([^*:：\n]*+)(?:\*\*[ \t]*+[:：]|[:：][ \t]*+\*\*)")
_FIELD_SEPARATORS = " \t|｜"
# A later field written without its colon (`| **Round** 一面`) would otherwise run into the value
# of the field before it.
_FIELD_WITHOUT_COLON = re.compile(r"[|｜][ \t]*+\*\*([^*:：\n|｜]++)\*\*")
_KNOWN_FIELDS = ("company", "round", "date", "tags")
# A line that names a field near its start (`Company Acme | Round 1`, `**Tags** [a]`) was meant
# as metadata even when it cannot be read.
_FIELD_MENTION = re.compile(r"[*_ \t]*(company|round|date|tags)\b", re.IGNORECASE)
ALIASES_FILE = "aliases.toml"
_TAG_SEPARATOR = re.compile(r"[,，、]")
_DATE = re.compile(r"(\d{4})([-/.])(\d{1,2})(?:\2(\d{1,2}))?")
# A mark tag, or an inline code span to step over (a `<mark>` in code is literal).
_MARK_OR_CODE = re.compile(r"(?P<code>(`+)[^\n]*?(?<!`)\2(?!`))|<(?P<slash>/?)mark\s*>", re.IGNORECASE)
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_EMPHASIS = re.compile(r"[*`~]|(?<!\w)_+|_+(?!\w)")
_EXTERNAL_URL = re.compile(r"[a-z][a-z0-9+.-]*:|//", re.IGNORECASE)


def load(path: Path) -> LoadResult:
    """Parse a bank: every `*.md` under a directory (recursively), or one file of any extension.

    A file that cannot be read or is not UTF-8 is an error; the other files still load.
    """
    root = path if path.is_dir() else path.parent
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if path.is_dir():
        files = _bank_files(path)
        if not files:
            warnings.append(Problem(".", 0, "no *.md files in this directory"))
    elif path.is_file():
        files = [path]
    else:
        return LoadResult(Bank(()), (), (Problem(str(path), 0, "no such file or directory"),))

    names = [file.relative_to(root).as_posix() for file in files]
    drafts: list[Question] = []
    for file, name in zip(files, names, strict=True):
        try:
            data = file.read_bytes()
        except OSError as exc:
            errors.append(Problem(name, 1, f"cannot read the file: {exc.strerror or exc}"))
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            errors.append(Problem(name, line, f"not UTF-8 (byte {exc.start}); the file is skipped"))
            continue
        file_questions, file_warnings, file_errors = _parse(text, file, name, root)
        drafts += file_questions
        warnings += file_warnings
        errors += file_errors
    aliases = _read_aliases(root / ALIASES_FILE, errors) if path.is_dir() else {}
    questions = _merged_names(_with_ids(drafts, warnings), aliases)
    order = {name: index for index, name in enumerate(names)}
    for problems in (warnings, errors):
        problems.sort(key=lambda p: (order.get(p.file, -1), p.line))
    notes = _unknown_fields(questions)
    return LoadResult(Bank(questions, aliases), tuple(warnings), tuple(errors), tuple(names), notes)


def parse_text(text: str, file: str | Path, root: Path | None = None) -> tuple[list[Question], list[Problem]]:
    """The questions (with ids) and problems (warnings and errors) of one bank file's text.

    `file` is where the text lives (images are resolved against it); questions and problems name
    it relative to `root`, or as given when there is no root.
    """
    file = Path(file)
    name = file.relative_to(root).as_posix() if root and file.is_relative_to(root) else file.as_posix()
    questions, problems, errors = _parse(text.removeprefix("\ufeff"), file, name, root or file.parent)
    problems = sorted(problems + errors, key=lambda p: p.line)
    return _with_ids(questions, problems), problems


def normalise_title(title: str) -> str:
    """What a question's id is hashed from: the same for every spelling of one title."""
    text = _EMPHASIS.sub("", unicodedata.normalize("NFKC", title).casefold())
    return " ".join(text.split())


def _bank_files(directory: Path) -> list[Path]:
    files = []
    for folder, subfolders, names in os.walk(directory):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        files += [Path(folder, n) for n in names if n.lower().endswith(".md") and not n.startswith(".")]
    return sorted(files, key=lambda f: f.relative_to(directory).as_posix())


@dataclass
class _QuestionBeingRead:
    """A question being read: its heading, and where its metadata line is."""

    line: int  # 0-based index of the heading line
    title: str
    chapter: str | None
    section: str | None
    metadata_line: int | None
    unreadable_metadata_line: int | None = None  # meant as metadata, but cannot be read


class _FileParser:
    """One pass over one file's block tokens; questions come out in file order."""

    def __init__(self, text: str, file: Path, name: str, image_root: Path) -> None:
        if "oaicite" in text:
            text = _OAICITE.sub("", text)
        self.text = _NEWLINE.sub("\n", text).replace("\0", "\ufffd")
        self.lines = self.text.split("\n")
        self.file = file
        self.name = name
        self.image_root = image_root.resolve()
        self.questions: list[Question] = []
        self.problems: list[Problem] = []
        self.errors: list[Problem] = []
        self.in_code = bytearray(len(self.lines))
        self.images: list[tuple[int, str]] = []  # (0-based line, src) in file order

    def warn(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.name, line + 1, message))

    def run(self) -> None:
        env: dict = {}  # link reference definitions, for the images parsed later
        # The tokens are dropped before the questions are built: fewer live objects, cheaper GC.
        for heading, end in self._question_headings(_MARKDOWN.parse(self.text, env), env):
            if heading.title:
                self.questions.append(self._question(heading, end))
            else:
                self.errors.append(
                    Problem(self.name, heading.line + 1, "the question has no title; left out")
                )

    def _question_headings(self, tokens: list[Token], env: dict) -> list[tuple[_QuestionBeingRead, int]]:
        """Each question's heading with the line where the question ends; notes code and images."""
        chapter = section = None
        current: _QuestionBeingRead | None = None
        headings: list[tuple[_QuestionBeingRead, int]] = []
        for index, token in enumerate(tokens):
            kind = token.type
            if kind == "heading_open" and token.map:
                start = token.map[0]
                level = int(token.tag[1])
                text = tokens[index + 1].content.strip()
                if level <= 2:
                    if current:
                        if token.markup in ("-", "="):
                            self.warn(
                                token.map[1] - 1,
                                "this line turns the text above it into a heading, "
                                "which ends the question; put a blank line before it to make a rule",
                            )
                        headings.append((current, start))
                        current = None
                    chapter, section = (text, None) if level == 1 else (chapter, text)
                elif level == 3:
                    question_title = _question_title(text)
                    metadata_line = self._metadata_line_after(tokens, index + 3)
                    if question_title is not None or metadata_line is not None:
                        if current:
                            headings.append((current, start))
                        title = text if question_title is None else question_title
                        unreadable = (
                            None if metadata_line is not None else self._mention_after(tokens, index + 3)
                        )
                        current = _QuestionBeingRead(start, title, chapter, section, metadata_line, unreadable)
            elif kind in ("fence", "code_block") and token.map:
                start, end = token.map
                self.in_code[start:end] = b"\1" * (end - start)
            elif kind == "inline" and "![" in token.content and token.map:
                self._collect_images(env, token)
        if current:
            headings.append((current, len(self.lines)))
        return headings

    def _metadata_line_after(self, tokens: list[Token], index: int) -> int | None:
        line = self._first_line_of_block(tokens, index)
        return line if line is not None and _metadata_fields(self.lines[line]) is not None else None

    def _mention_after(self, tokens: list[Token], index: int) -> int | None:
        """The line after a heading that names metadata fields but is not a metadata line."""
        line = self._first_line_of_block(tokens, index)
        return line if line is not None and _unreadable_metadata(self.lines[line]) else None

    @staticmethod
    def _first_line_of_block(tokens: list[Token], index: int) -> int | None:
        if index >= len(tokens):
            return None
        token = tokens[index]
        if token.type not in ("paragraph_open", "blockquote_open") or not token.map:
            return None
        return token.map[0]

    def _collect_images(self, env: dict, token: Token) -> None:
        children: list[Token] = []
        _MARKDOWN.inline.parse(token.content, _MARKDOWN, env, children)
        start, end = token.map or (0, 0)
        for child in children:
            src = child.attrGet("src") if child.type == "image" else None
            if isinstance(src, str) and src:
                needle = unquote(src).rsplit("/", 1)[-1]
                line = next((n for n in range(start, end) if needle in self.lines[n]), start)
                self.images.append((line, src))

    def _question(self, heading: _QuestionBeingRead, end: int) -> Question:
        company = round_ = date_text = None
        tags: tuple[str, ...] = ()
        extra: dict[str, str] = {}
        if heading.unreadable_metadata_line is not None:
            line = heading.unreadable_metadata_line
            self.warn(
                line, f"metadata line not read: {_unreadable_metadata(self.lines[line])}; it is left out"
            )
        elif heading.metadata_line is None:
            self.warn(
                heading.line,
                "no metadata line (> **Company**: … | **Round**: … | **Date**: … | **Tags**: […])",
            )
        else:
            fields = self._fields(heading.metadata_line)
            company, round_, date_text = (
                fields.pop("company", None),
                fields.pop("round", None),
                fields.pop("date", None),
            )
            tags = _tags(fields.pop("tags", None) or "")
            extra = fields
            if date_text and not _is_date(date_text):
                self.warn(heading.metadata_line, f"date {date_text!r} is not YYYY-MM-DD; kept as written")
        metadata = (heading.metadata_line, heading.unreadable_metadata_line)
        body = [n for n in range(heading.line + 1, end) if n not in metadata]
        answer, summary = self._answer_and_summary(body)
        if not answer:
            self.warn(heading.line, "the question has no answer")
        if summary is None:
            self.warn(heading.line, "no summary: mark it with <mark>…</mark>")
        return Question(
            id="",
            title=heading.title,
            answer=answer,
            summary=summary,
            chapter=heading.chapter,
            section=heading.section,
            company=company,
            round=round_,
            date=date_text,
            tags=tags,
            extra=MappingProxyType(extra),
            file=self.name,
            line=heading.line + 1,
            images=self._local_images(heading.line, end),
        )

    def _fields(self, line: int) -> dict[str, str]:
        """Field name → value of a metadata line: known names lowercased, absent values dropped."""
        fields: dict[str, str] = {}
        for name, value in _metadata_fields(self.lines[line]) or ():
            key = name.casefold() if name.casefold() in _KNOWN_FIELDS else name
            if colonless := _FIELD_WITHOUT_COLON.search(value):
                left_out = colonless.group(1).strip()
                self.warn(
                    line, f"each bold field name needs a colon, as in **{left_out}**: …; {left_out} is left out"
                )
                value = value[: colonless.start()].strip(_FIELD_SEPARATORS)
            if key in fields:
                self.warn(line, f"{name} is given twice; the first is kept")
            elif value and value.casefold() != "none":
                fields[key] = value
            else:
                fields[key] = ""
        return {k: v for k, v in fields.items() if v}

    def _answer_and_summary(self, body: list[int]) -> tuple[str, str | None]:
        """Drop mark tags from the body (keeping their text) and collect the marked text."""
        answer: list[str] = []
        marks: list[str] = []
        marked: list[str] | None = None  # the open mark's text so far
        opened_at = 0
        for n in body:
            line = self.lines[n]
            if self.in_code[n] or "<" not in line:
                answer.append(line)
                if marked is not None:
                    marked.append(line + "\n")
                continue
            kept: list[str] = []
            position = 0
            for match in _MARK_OR_CODE.finditer(line):
                if match.group("code"):
                    continue
                kept.append(line[position : match.start()])
                if marked is not None:
                    marked.append(line[position : match.start()])
                    marks.append("".join(marked))
                    marked = None
                elif match.group("slash"):
                    self.warn(n, "</mark> without an opening <mark>; dropped")
                else:
                    marked, opened_at = [], n
                position = match.end()
            kept.append(line[position:])
            if marked is not None:
                marked.append(line[position:] + "\n")
            if position == 0 or "".join(kept).strip():
                answer.append("".join(kept))
        if marked is not None:
            self.warn(opened_at, "<mark> is not closed before the question ends; the summary runs to its end")
            marks.append("".join(marked))
        summary = "\n\n".join(text.strip() for text in marks if text.strip()) or None
        return _trimmed(answer), summary

    def _local_images(self, start: int, end: int) -> tuple[str, ...]:
        """Existing local images referenced after the heading line `start` and before `end`."""
        found: list[str] = []
        first = bisect.bisect_right(self.images, (start, "\U0010ffff"))
        for line, src in self.images[first : bisect.bisect_left(self.images, (end, ""))]:
            if _EXTERNAL_URL.match(src):
                continue
            path = (self.file.parent / unquote(src.split("#", 1)[0].split("?", 1)[0])).resolve()
            if not path.is_relative_to(self.image_root):
                self.warn(line, f"image {src} is outside the bank's directory; ignored")
            elif not path.is_file():
                self.warn(line, f"image {src} not found")
            elif str(path) not in found:
                found.append(str(path))
        return tuple(found)


def _parse(
    text: str, file: Path, name: str, image_root: Path
) -> tuple[list[Question], list[Problem], list[Problem]]:
    """Questions without ids yet (ids need every file, for duplicates), the file's warnings and errors."""
    if not text.strip():
        return [], [Problem(name, 1, "empty file")], []
    parser = _FileParser(text, file, name, image_root)
    parser.run()
    if not parser.questions and not parser.errors and Path(name).stem.casefold() not in _DOCUMENTATION_STEMS:
        parser.warn(0, "no questions (a question starts with a '### Q.' heading)")
    parser.problems.sort(key=lambda p: p.line)
    return parser.questions, parser.problems, parser.errors


def _question_title(heading: str) -> str | None:
    """The title of a `Q.` heading without its prefix, or None when it has no `Q.` prefix."""
    prefix = _QUESTION_PREFIX.match(heading)
    return heading[prefix.end() :].strip() if prefix else None


def _metadata_fields(line: str) -> list[tuple[str, str]] | None:
    """(name, value) pairs when the line is a metadata line: bold `Name:` fields only, at least one
    of Company/Round/Date/Tags; otherwise None."""
    text = line.lstrip(" \t>")
    matches = [m for m in _FIELD.finditer(text) if m.group(1).strip()]
    if not matches or matches[0].start() != 0:
        return None
    if not any(m.group(1).strip().casefold() in _KNOWN_FIELDS for m in matches):
        return None
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [
        (m.group(1).strip(), text[m.end() : end].strip(_FIELD_SEPARATORS))
        for m, end in zip(matches, ends, strict=True)
    ]


def _unreadable_metadata(line: str) -> str | None:
    """What is wrong with a line that names metadata fields near its start, or None when it is
    not such a line (or is a readable metadata line)."""
    text = line.lstrip(" \t>")
    if not _FIELD_MENTION.match(text) or _metadata_fields(line) is not None:
        return None
    if "**" not in text:
        return "field names must be bold, as in > **Company**: 美团 | **Round**: 一面"
    if not any(m.group(1).strip() for m in _FIELD.finditer(text)):
        return "each bold field name needs a colon, as in **Company**: 美团"
    return "it must start with a field, as in > **Company**: 美团 | **Round**: 一面"


def _unknown_fields(questions: list[Question]) -> tuple[Problem, ...]:
    """One note per metadata field the bank does not know, at its first use, with its count."""
    first: dict[str, Question] = {}
    counts: Counter[str] = Counter()
    for question in questions:
        for name in question.extra:
            first.setdefault(name, question)
            counts[name] += 1
    return tuple(
        Problem(
            q.file,
            q.line,
            f"metadata field {name!r} is not one of Company, Round, Date, Tags; "
            f"kept as extra ({counts[name]} question{'s' if counts[name] > 1 else ''})",
        )
        for name, q in first.items()
    )


def _read_aliases(path: Path, errors: list[Problem]) -> dict[str, str]:
    """name key → display name, from `aliases.toml` (`Display = "spelling"` or a list of them)."""
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        line = _toml_error_line(exc)
        # TOML 1.0 bare keys are ASCII only: the likeliest mistake in a Chinese bank.
        hint = '; quote names other than ASCII letters and digits: "字节跳动" = "字节"'
        errors.append(Problem(path.name, line, f"aliases not read: {exc}{hint if line else ''}"))
        return {}
    aliases: dict[str, str] = {}
    for display, spellings in table.items():
        if isinstance(spellings, str):
            spellings = [spellings]
        if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
            errors.append(Problem(path.name, 0, f"{display}: give a spelling or a list of spellings"))
            continue
        for spelling in [display, *spellings]:
            aliases[name_key(spelling)] = display
    return aliases


def _toml_error_line(exc: Exception) -> int:
    match = re.search(r"line (\d+)", str(exc))
    return int(match[1]) if match else 0


def _merged_names(questions: list[Question], aliases: dict[str, str]) -> list[Question]:
    """Tags and companies under one spelling per name (see the module's docstring)."""

    def group(name: str) -> str:
        return name_key(aliases.get(name_key(name), name))

    spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for question in questions:
        for name in (*question.tags, *([question.company] if question.company else [])):
            spellings[group(name)][name] += 1
    chosen = {name_key(display): display for display in aliases.values()}
    # most_common keeps first-seen order among equal counts: a tie goes to the earlier spelling.
    display = {key: chosen.get(key) or counts.most_common(1)[0][0] for key, counts in spellings.items()}
    return [
        replace(
            q,
            tags=tuple(dict.fromkeys(display[group(t)] for t in q.tags)),
            company=display[group(q.company)] if q.company else q.company,
        )
        for q in questions
    ]


def _tags(value: str) -> tuple[str, ...]:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    tags = (t.strip() for t in _TAG_SEPARATOR.split(value))
    return tuple(dict.fromkeys(t for t in tags if t and t.casefold() != "none"))


def _is_date(text: str) -> bool:
    """YYYY-MM-DD, also with one-digit month or day, `/` or `.` separators, or no day."""
    match = _DATE.fullmatch(text)
    if not match:
        return False
    year, _, month, day = match.groups()
    try:
        date(int(year), int(month), int(day or 1))
    except ValueError:
        return False
    return True


def _trimmed(lines: list[str]) -> str:
    """The lines joined, without blank lines around them or rules at the end."""
    end = len(lines)
    while end and (not lines[end - 1].strip() or _RULE.fullmatch(lines[end - 1])):
        end -= 1
    start = 0
    while start < end and not lines[start].strip():
        start += 1
    return "\n".join(lines[start:end])


def _with_ids(questions: list[Question], warnings: list[Problem]) -> list[Question]:
    """Give every question its id; questions sharing a title get a warning and content-based ids."""
    by_id: defaultdict[str, list[int]] = defaultdict(list)
    for index, question in enumerate(questions):
        by_id[_hash(normalise_title(question.title))].append(index)
    ids = [""] * len(questions)
    for title_id, indexes in by_id.items():
        if len(indexes) == 1:
            ids[indexes[0]] = title_id
            continue
        copies: defaultdict[str, list[Question]] = defaultdict(list)  # content → questions with it
        for index in indexes:
            question = questions[index]
            content = normalise_title(question.title) + "\n" + _content_key(question)
            same_content = copies[content]
            # Exact copies are numbered in bank order: only they can swap ids, and they are alike.
            ids[index] = _hash(content + (f"\ncopy {len(same_content)}" if same_content else ""))
            if same_content:
                message = f"exact copy of {same_content[0].file}:{same_content[0].line}"
            else:
                other = questions[indexes[1] if index == indexes[0] else indexes[0]]
                message = f"same title as {other.file}:{other.line}; their ids depend on their content"
            same_content.append(question)
            warnings.append(Problem(question.file, question.line, message))
    return [replace(q, id=i) for q, i in zip(questions, ids, strict=True)]


def _content_key(question: Question) -> str:
    metadata = (question.company, question.round, question.date, ",".join(question.tags))
    return "\n".join(str(v) for v in metadata) + "\n" + question.answer


def _hash(text: str) -> str:
    return "q" + hashlib.sha1(text.encode()).hexdigest()[:10]
