"""How much of the bundled bank's math reaches readers as text rather than TeX.

    python -m bench.formulas [--content DIR]

Lists every math span (inline, display and fenced `math`/`latex`/`tex` blocks) of the bank as the
renderers see them, converts each, and counts a span as converted when its text keeps no
backslash and no brace. The spans that fail are listed with their file and line: those the
converter gives up on are shown to readers as TeX source in monospace; those with a brace left are
converted text in which a brace is the formula's own (a set, `\\{y_i\\}`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bot.config import BUNDLED_CONTENT
from bot.core.bank import load
from bot.core.render import Formula, formulas

GOAL = 0.97


def fully_converted(formula: Formula) -> bool:
    return formula.text is not None and not any(char in formula.text for char in "\\{}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, default=BUNDLED_CONTENT)
    args = parser.parse_args()
    root = args.content
    started = time.perf_counter()
    spans: list[tuple[str, Formula]] = []
    for name in load(root).files:
        spans += [(name, formula) for formula in formulas((root / name).read_text(encoding="utf-8-sig"))]
    elapsed = time.perf_counter() - started
    failing = [(name, formula) for name, formula in spans if not fully_converted(formula)]
    for name, formula in failing:
        why = "shown as TeX source" if formula.text is None else f"brace left: {formula.text}"
        print(f"{name}:{formula.line}: {why}: {' '.join(formula.source.split())[:160]}")
    share = 1 - len(failing) / len(spans) if spans else 1.0
    print(
        f"{len(spans)} math spans in {root}, {len(failing)} not fully converted ({elapsed:.2f} s with the load)"
    )
    print(f"math_converted: {share:.3f} (goal: ≥ {GOAL})")


if __name__ == "__main__":
    main()
