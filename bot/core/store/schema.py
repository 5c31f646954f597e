"""The numbered migrations of each backend: `migrations/<backend>/NNNN_<what>.sql`, each opening with
a one-line `-- description`, applied in order. Both backends have the same numbers: a change to the
schema is one new file in each directory, in that backend's dialect (tables.py lists the columns
both must end up with, and a test holds both to it).

Append-only: a released migration is never edited; the next change is a new file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    name: str  # the file name: 0002_post_states.sql
    description: str  # its first line, a comment
    sql: str


def migrations(backend: str) -> list[Migration]:
    """The files under migrations/<backend>, in order; file N brings schema version N-1 to N."""
    files = sorted(
        (
            f
            for f in resources.files(__package__).joinpath("migrations", backend).iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    found = []
    for number, file in enumerate(files, 1):
        text = file.read_text(encoding="utf-8")
        first = text.partition("\n")[0]
        if not file.name.startswith(f"{number:04d}_") or not first.startswith("-- "):
            raise RuntimeError(
                f"migration {file.name}: expected {number:04d}_<what>.sql opening with a -- description"
            )
        found.append(Migration(file.name, first[3:].strip(), text))
    return found
