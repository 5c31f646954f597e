"""How long the patterns that once backtracked take on 10,000-character adversarial lines.

    python -m bench.backtracking [--repeat 5]

The bank's metadata field patterns (issue 12: a line of `> **` and 3,000 spaces once took ~50 s)
and the log redaction's token shapes (a 10,000-digit line once took 1.6 s). Each line is timed
by the best of `--repeat` runs; a goal line reports the slowest line. The lines are the tests':
`tests/test_bank_metadata_linear.py` checks what the patterns make of them, and
`tests/test_ops_logs.py` that each token shape cannot backtrack.
(Not named `regex.py`: run as a script, its folder would shadow the `regex` package.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bot.core.bank import _metadata_fields, _unreadable_metadata
from bot.ops.logs import Redactor
from tests.test_bank_metadata_linear import ADVERSARIAL
from tests.test_ops_logs import ADVERSARIAL_PIECES, DISCORD_TOKEN, TELEGRAM_TOKEN, adversarial_line

GOAL_MS = 100


def best_ms(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def slowest(label: str, lines: list[str], read: Callable[[str], object], repeat: int) -> float:
    """The best time of each line, printed; the slowest of them."""
    print(label)
    times = []
    for line in lines:
        times.append(best_ms(lambda line=line: read(line), repeat))
        print(f"  {times[-1]:8.3f} ms  {len(line):6,} characters  {line[:24]!r}…")
    return max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each line; the best counts")
    args = parser.parse_args()

    # What the loader asks of a line after a heading: is it metadata, and if not, why not.
    metadata = slowest(
        "metadata line patterns",
        ADVERSARIAL,
        lambda line: (_metadata_fields(line), _unreadable_metadata(line)),
        args.repeat,
    )
    redact = Redactor([TELEGRAM_TOKEN, DISCORD_TOKEN])
    lines = [adversarial_line([piece], 0.5) for piece in ADVERSARIAL_PIECES]
    redaction = slowest("log redaction (two secrets and the token shapes)", lines, redact, args.repeat)

    print(f"metadata_10k_ms: {metadata:.2f} (goal: ≤ {GOAL_MS})")
    print(f"redaction_10k_ms: {redaction:.2f} (goal: ≤ {GOAL_MS})")


if __name__ == "__main__":
    main()
