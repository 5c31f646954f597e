import asyncio
import errno
import os
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from subprocess import PIPE

import pytest

from bot.core.store import SQLiteStore, Store
from bot.core.store.schema import migrations
from bot.ops.backup import BackupError, DatabaseInUse, backup, hold_instance_lock, restore

PADDING = "x" * 1000  # makes the file a few MB, so the copy takes long enough to overlap writes


async def add_pairs(store: Store, start: int, count: int) -> None:
    """One transaction adding as many chats as users, so a consistent copy has as many of each."""
    keys = [f"telegram:{n}" for n in range(start, start + count)]

    def insert(db: sqlite3.Connection) -> None:
        db.executemany(
            "INSERT INTO chats (key, platform, chat_id, created_at) VALUES (?, 'telegram', ?, '')",
            [(key, key) for key in keys],
        )
        db.executemany("INSERT INTO users (key, name, created_at) VALUES (?, ?, '')", [(k, PADDING) for k in keys])

    await store.write(insert)


async def make_database(path: Path, pairs: int) -> None:
    store = await SQLiteStore.open(path)
    await add_pairs(store, 0, pairs)
    await store.close()


def counts(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as db:
        return (
            db.execute("SELECT count(*) FROM chats").fetchone()[0],
            db.execute("SELECT count(*) FROM users").fetchone()[0],
        )


def dump(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return "\n".join(db.iterdump())


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_backup_while_the_bot_writes_is_a_consistent_copy(tmp_path):
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    await add_pairs(store, 0, 3000)
    written = 3000
    started, stop = asyncio.Event(), asyncio.Event()

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            await add_pairs(store, written, 1)
            written += 1
            started.set()

    writer = asyncio.create_task(keep_writing())
    await started.wait()
    at_start = written
    (tmp_path / "backups").mkdir()
    dest = await backup(store.path, tmp_path / "backups")  # an existing directory: a dated file in it
    at_end = written
    stop.set()
    await writer
    await store.close()

    chats, users = counts(dest)
    assert chats == users, "a pair was split: the copy is not a snapshot"
    assert 3000 <= at_start <= chats <= at_end + 1
    assert at_end > at_start, "the writer was blocked during the backup"
    assert integrity(dest) == "ok"
    assert dest.parent == tmp_path / "backups" and dest.name.startswith("dailyq-")
    assert names(dest.parent) == [dest.name]
    reopened = await SQLiteStore.open(dest)
    assert await reopened.schema_version() == len(migrations("sqlite"))
    await reopened.close()


async def test_backup_replaces_an_older_backup_and_refuses_odd_targets(tmp_path):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 2)
    dest = tmp_path / "nightly.sqlite3"
    dest.write_bytes(b"yesterday")
    assert await backup(db, dest) == dest
    assert counts(dest) == (2, 2)

    dated = await backup(db, f"{tmp_path}/backups/")
    assert dated.parent == tmp_path / "backups" and counts(dated) == (2, 2)
    dated.unlink()
    (tmp_path / "backups").rmdir()

    with pytest.raises(BackupError, match="is the database itself"):
        await backup(db, db)
    with pytest.raises(BackupError, match="does not exist"):
        await backup(db, tmp_path / "missing" / "copy.sqlite3")
    with pytest.raises(BackupError, match="no database at"):
        await backup(tmp_path / "nothing.sqlite3", tmp_path / "copy.sqlite3")
    assert not (tmp_path / "nothing.sqlite3").exists()
    assert names(tmp_path) == ["dailyq.sqlite3", "nightly.sqlite3"]


def disk_full_after(pages: int):
    """A real SQLITE_FULL from SQLite itself: the copy may not grow beyond `pages` pages."""

    def connect(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    return connect


def no_space_left(path: str) -> sqlite3.Connection:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


@pytest.mark.parametrize("connect_target", [disk_full_after(3), no_space_left], ids=["sqlite-full", "enospc"])
async def test_a_full_disk_is_a_clear_error_that_leaves_everything_as_it_was(tmp_path, connect_target):
    db = tmp_path / "live" / "dailyq.sqlite3"
    await make_database(db, 50)
    before = dump(db)
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "nightly.sqlite3").write_bytes(b"the previous backup")

    with pytest.raises(BackupError, match=r"not enough free space in .*backups.*nothing was written"):
        await backup(db, backups / "nightly.sqlite3", connect_target=connect_target)

    assert dump(db) == before
    assert names(backups) == ["nightly.sqlite3"]
    assert (backups / "nightly.sqlite3").read_bytes() == b"the previous backup"


async def test_restore_is_refused_while_a_bot_holds_the_database(tmp_path):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 3)
    saved = await backup(db, tmp_path / "saved.sqlite3")
    before = dump(db)
    # The bot: another process holding the lock until it is killed.
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, str(db), stdin=PIPE, stdout=PIPE, cwd=Path(__file__).parents[1]
    )
    try:
        assert await bot.stdout.readline() == b"locked\n"
        with pytest.raises(
            DatabaseInUse, match=rf"in use by a running dailyq \(pid {bot.pid}.*stop it first"
        ):
            await restore(saved, db)
        assert dump(db) == before
    finally:
        bot.kill()
        await bot.wait()
    # A killed bot leaves no stale lock behind.
    assert await restore(saved, db) is not None
    assert counts(db) == (3, 3)


HOLD_LOCK = """
import sys
from bot.ops.backup import hold_instance_lock
with hold_instance_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


async def test_restore_brings_back_the_backup_and_keeps_the_replaced_database(tmp_path):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 3)
    saved = await backup(db, tmp_path / "saved.sqlite3")
    store = await SQLiteStore.open(db)
    await add_pairs(store, 3, 4)
    await store.close()

    kept = await restore(saved, db)

    assert counts(db) == (3, 3)
    assert kept is not None and counts(kept) == (7, 7)
    assert counts(saved) == (3, 3)
    store = await SQLiteStore.open(db)  # the bot starts on the restored file
    await add_pairs(store, 3, 1)
    await store.close()
    assert counts(db) == (4, 4)


async def test_restore_after_a_crash_does_not_replay_the_old_wal(tmp_path):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 3)
    saved = await backup(db, tmp_path / "saved.sqlite3")

    # A bot that died mid-run: its last commits live only in the -wal beside the database.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    with closing(sqlite3.connect(db, isolation_level=None)) as live:
        live.execute("PRAGMA wal_autocheckpoint = 0")
        live.execute(
            "INSERT INTO chats (key, platform, chat_id, created_at) VALUES ('telegram:x', 'telegram', 'x', '')"
        )
        for suffix in ("", "-wal", "-shm"):
            shutil.copy(f"{db}{suffix}", crashed / f"dailyq.sqlite3{suffix}")

    kept = await restore(saved, crashed / "dailyq.sqlite3")

    assert counts(crashed / "dailyq.sqlite3") == (3, 3)
    assert integrity(crashed / "dailyq.sqlite3") == "ok"
    assert counts(kept) == (4, 3), "the crashed database kept its WAL and its last commit"
    assert not (crashed / "dailyq.sqlite3-wal").exists() and not (crashed / "dailyq.sqlite3-shm").exists()


async def test_restore_onto_a_new_machine_creates_the_database(tmp_path):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 2)
    saved = await backup(db, tmp_path / "saved.sqlite3")
    fresh = tmp_path / "new" / "data" / "dailyq.sqlite3"
    assert await restore(saved, fresh) is None
    assert counts(fresh) == (2, 2)


def damage(path: Path) -> None:
    with open(path, "r+b") as file:
        file.seek(2 * 4096)  # the third page: a table's b-tree
        file.write(b"\xff" * 4096)


def not_dailyq(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (x)")


def not_sqlite(path: Path) -> None:
    path.write_text("# my bank\n\nnot a database at all\n" * 100)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(damage, "is damaged"), (not_dailyq, "not a dailyq database"), (not_sqlite, "is not a SQLite database")],
)
async def test_restore_refuses_a_bad_backup_and_changes_nothing(tmp_path, spoil, message):
    db = tmp_path / "dailyq.sqlite3"
    await make_database(db, 100)
    bad = await backup(db, tmp_path / "bad.sqlite3")
    if spoil is not damage:
        bad.unlink()
    spoil(bad)
    before = dump(db)
    with pytest.raises(BackupError, match=message):
        await restore(bad, db)
    assert dump(db) == before
    assert names(tmp_path) == ["bad.sqlite3", "dailyq.sqlite3", "dailyq.sqlite3.lock"]


def test_the_instance_lock_admits_one_holder_at_a_time(tmp_path):
    db = tmp_path / "data" / "dailyq.sqlite3"
    with (
        hold_instance_lock(db),
        pytest.raises(DatabaseInUse, match="in use by a running dailyq"),
        hold_instance_lock(db),
    ):
        pass
    with hold_instance_lock(db):  # released on exit
        pass


@pytest.mark.parametrize("linked", ["file", "directory"])
async def test_a_restore_through_a_symbolic_link_is_stopped_by_the_bots_lock(tmp_path, linked):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "dailyq.sqlite3"
    await make_database(db, 3)
    saved = await backup(db, tmp_path / "saved.sqlite3")
    if linked == "file":
        through_link = tmp_path / "dailyq.sqlite3"
        through_link.symlink_to(db)
    else:
        (tmp_path / "current").symlink_to(data, target_is_directory=True)
        through_link = tmp_path / "current" / "dailyq.sqlite3"
    with hold_instance_lock(db), pytest.raises(DatabaseInUse):  # the bot, on the real path
        await restore(saved, through_link)
    store = await SQLiteStore.open(db)
    await add_pairs(store, 3, 2)
    await store.close()

    kept = await restore(saved, through_link)

    assert counts(db) == (3, 3), "the file the link leads to is the one replaced"
    assert kept is not None and counts(kept) == (5, 5)
    assert through_link.resolve() == db.resolve()
