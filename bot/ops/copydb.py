"""`dailyq copy-db FROM TO`: every row of one database into another, SQLite ↔ PostgreSQL.

A group that outgrows its SQLite file keeps every streak, grade and subscription: chats, users,
posts, open questions, answers and reviews are copied with their ids, in one transaction on the
target that commits only if each table's row count matches the source's.

Refused: while a bot runs on either database (SQLite: its instance lock; PostgreSQL: a dailyq
session on the same schema), and into a target that already holds rows unless `replace` (then its
rows are deleted in that same transaction).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path

from bot.config import is_database_url, shown_database
from bot.core.store import DatabaseUnavailable, Store, open_store
from bot.core.store.tables import TABLES, RowCountMismatch
from bot.ops.backup import DatabaseInUse, hold_instance_lock


class CopyError(Exception):
    """Why the copy was refused or failed; nothing was written to the target."""


async def run_copy_db(source: Path | str, target: Path | str, *, replace: bool) -> int:
    """`dailyq copy-db`: copy, then print each table's rows; one line and exit 1 when refused."""
    try:
        counts = await copy_db(source, target, replace=replace)
    except (CopyError, DatabaseInUse) as error:
        print(f"dailyq copy-db: {error}", file=sys.stderr)
        return 1
    print(f"dailyq copy-db: copied {shown_database(source)} to {shown_database(target)}")
    width = max(map(len, counts))
    for table, rows in counts.items():
        print(f"  {table:<{width}}  {rows:>10,}")
    print("dailyq copy-db: each table's row count matches the source")
    return 0


async def copy_db(source: Path | str, target: Path | str, *, replace: bool = False) -> dict[str, int]:
    """Copy every row from `source` to `target`; the row count of each table copied."""
    _refuse_pointless(source, target)
    with ExitStack() as locks:
        for db in (source, target):
            locks.enter_context(_no_bot_on(db))
        async with AsyncExitStack() as stores:
            source_store = await _open(source, stores)
            target_store = await _open(target, stores)
            for db, store in ((source, source_store), (target, target_store)):
                if await store.bots_connected():
                    raise CopyError(f"a dailyq is running on {shown_database(db)}; stop it first")
            held = await target_store.row_counts()
            if any(held.values()) and not replace:
                raise CopyError(
                    f"{shown_database(target)} already holds data ({_summary(held)}); "
                    "add --replace to delete it and copy"
                )
            expected = await source_store.row_counts()
            try:
                await target_store.import_rows(source_store.export_rows(), expected, replace=replace)
            except RowCountMismatch as mismatch:
                raise CopyError(f"the copy was rolled back: {mismatch}") from None
            return expected


async def _open(db: Path | str, stores: AsyncExitStack) -> Store:
    try:
        store = await open_store(db, purpose="copy-db")
    except DatabaseUnavailable as error:
        raise CopyError(f"cannot open {shown_database(db)}: {error}") from None
    stores.push_async_callback(store.close)
    return store


@contextmanager
def _no_bot_on(db: Path | str) -> Iterator[None]:
    """A SQLite file's instance lock, held for the copy (raises DatabaseInUse while a bot holds it)."""
    if is_database_url(db):
        yield
        return
    with hold_instance_lock(db):
        yield


def _refuse_pointless(source: Path | str, target: Path | str) -> None:
    if not is_database_url(source) and not os.path.isfile(source):
        raise CopyError(f"no database file at {source}")
    if is_database_url(source) or is_database_url(target):
        same = source == target
    else:
        same = Path(source).resolve() == Path(target).resolve()
    if same:
        raise CopyError("FROM and TO are the same database")


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[table]} {table}" for table in TABLES if counts[table])
