"""How much the bank parser costs on top of the markdown-it parse it is built on.

    python -m bench.parse [--questions 10000] [--seed 1] [--repeat 5] [--bundled-repeat 10]

Times `load()` on the bundled content and `parse_text()` on a synthetic bank, and a bare
`markdown_parser().parse()` (markdown-it-py with the bank's configuration) of the same text in
the same run. The two alternate, round after round (more rounds for the small bundled bank,
whose sub-second times are noisier), and each ratio is the median of the rounds' ratios, at least
five: the typical round, not the lucky one. The goal line reports the worse of the two ratios.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.synthetic import synthetic_bank_markdown
from bot.config import BUNDLED_CONTENT
from bot.core.bank import load, markdown_parser, parse_text

RATIO_GOAL = 2.0
MIN_ROUNDS = 5  # a median of fewer rounds is a lucky or an unlucky one


def round_times(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Each run's wall time in each round; a round runs each once, so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def report(label: str, times: dict[str, list[float]]) -> float:
    ratios = [ours / theirs for ours, theirs in zip(times["dailyq"], times["markdown-it"], strict=True)]
    ratio = statistics.median(ratios)
    print(label)
    print(f"  dailyq parser          {statistics.median(times['dailyq']):8.3f} s (median)")
    print(f"  markdown-it parse()    {statistics.median(times['markdown-it']):8.3f} s (median)")
    print(f"  ratio, round by round  {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"  ratio, median          {ratio:8.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=MIN_ROUNDS, help="rounds on the synthetic bank")
    parser.add_argument("--bundled-repeat", type=int, default=10, help="rounds on the bundled content")
    args = parser.parse_args()
    if min(args.repeat, args.bundled_repeat) < MIN_ROUNDS:
        parser.error(f"at least {MIN_ROUNDS} rounds, for a median that is not one lucky round")
    md = markdown_parser()

    files = [Path(name) for name in load(BUNDLED_CONTENT).files]
    texts = [(BUNDLED_CONTENT / f).read_text(encoding="utf-8-sig") for f in files]
    bundled = round_times(
        {"dailyq": lambda: load(BUNDLED_CONTENT), "markdown-it": lambda: [md.parse(t) for t in texts]},
        args.bundled_repeat,
    )
    size = sum(len(t.encode()) for t in texts) / 1e6
    bundled_ratio = report(f"bundled content: {len(files)} files, {size:.2f} MB", bundled)

    text = synthetic_bank_markdown(args.questions, args.seed)
    synthetic = round_times(
        {"dailyq": lambda: parse_text(text, Path("synthetic.md")), "markdown-it": lambda: md.parse(text)},
        args.repeat,
    )
    label = f"synthetic bank: {args.questions:,} questions, {len(text.encode()) / 1e6:.1f} MB"
    synthetic_ratio = report(label, synthetic)

    print(f"parse_ratio_vs_markdown_it: {max(bundled_ratio, synthetic_ratio):.2f} (goal: ≤ {RATIO_GOAL})")


if __name__ == "__main__":
    main()
