"""Backups and restores of the SQLite file, and the lock that says "a bot is using this database".

A backup uses SQLite's online backup API in one step: it reads a consistent snapshot while the
bot keeps writing (WAL lets readers and the writer proceed together). Both directions write a
temporary file next to the destination, check it with `PRAGMA integrity_check`, and only then
rename it into place, so a failure (a full disk, a damaged backup) leaves the destination as it
was and no partial file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.core.store.sqlite import copy_database, dailyq_schema_version

# How a copy's destination is opened; a test passes one that limits the size to simulate a full disk.
ConnectTarget = Callable[[str], sqlite3.Connection]


class BackupError(Exception):
    """A backup or restore that did not happen; the message says why and what to do."""


class DatabaseInUse(BackupError):
    """Another process holds the database's instance lock: a bot is running on it."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


@contextlib.contextmanager
def hold_instance_lock(db_path: Path | str) -> Iterator[None]:
    """Hold `<db>.lock` for as long as a bot (or a restore) uses the database.

    An advisory flock: the kernel releases it when the process dies, so a crash never leaves a
    stale lock. The file itself stays (removing it would race with the next holder).
    The lock belongs to the file the path leads to: a bot started on `data/dailyq.sqlite3` and a
    restore given a symbolic link to it (or through a linked directory) take the same lock.
    """
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    path = _sidecar(db_path, ".lock")
    with open(path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip()
            raise DatabaseInUse(
                f"{db_path} is in use by a running dailyq (pid {holder or 'unknown'}, lock {path}); "
                "stop it first (e.g. docker compose stop dailyq)",
                int(holder) if holder.isdigit() else None,
            ) from None
        lock_file.truncate(0)
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


async def backup(
    db_path: Path | str, dest_path: Path | str, connect_target: ConnectTarget = sqlite3.connect
) -> Path:
    """Copy the live database to `dest_path`: a file, or a directory to put a dated file in (one
    named with a trailing slash is created). Safe while the bot runs. Returns the file written.
    """
    as_directory = str(dest_path).endswith(os.sep)
    return await asyncio.to_thread(_backup, Path(db_path), Path(dest_path), as_directory, connect_target)


async def restore(backup_path: Path | str, db_path: Path | str) -> Path | None:
    """Replace the database with a backup, refusing while a bot holds the database's lock.

    The replaced database is kept beside it as `<db>.replaced-<time>` (returned; None when there
    was none), with its WAL, so a restore can be undone by hand. A symbolic link is followed:
    the file it leads to is locked and replaced, and the link stays.
    """
    return await asyncio.to_thread(_restore, Path(backup_path), Path(db_path))


def _backup(db_path: Path, dest: Path, as_directory: bool, connect_target: ConnectTarget) -> Path:
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path} (set DAILYQ_DB or --db)")
    if as_directory:
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BackupError(f"cannot create the directory {dest}: {error.strerror}") from error
    if dest.is_dir():
        dest = dest / f"dailyq-{datetime.now(UTC):%Y%m%d-%H%M%S}.sqlite3"
    if dest.exists() and dest.samefile(db_path):
        raise BackupError(f"{dest} is the database itself; choose another destination")
    staged = _copy_verified(db_path, dest, connect_target)
    try:
        os.replace(staged, dest)
    except OSError as error:
        _remove_with_sidecars(staged)
        raise BackupError(_explain(error, db_path, dest)) from error
    _sync_directory(dest.parent)
    return dest


def _restore(backup_path: Path, db_path: Path) -> Path | None:
    db_path = db_path.resolve()
    if not backup_path.is_file():
        raise BackupError(f"no backup at {backup_path}")
    with hold_instance_lock(db_path):
        staged = _copy_verified(backup_path, db_path, sqlite3.connect)
        try:
            _require_dailyq_schema(staged, backup_path)
            return _swap_in(staged, db_path)
        except OSError as error:
            raise BackupError(f"replacing {db_path} failed: {error}; the backup is intact") from error
        finally:
            _remove_with_sidecars(staged)


def _copy_verified(source: Path, dest: Path, connect_target: ConnectTarget) -> Path:
    """Copy `source` to a new temporary file beside `dest` and check it; returns that file."""
    if not dest.parent.is_dir():
        raise BackupError(f"cannot write {dest}: the directory {dest.parent} does not exist")
    try:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        os.close(fd)
    except OSError as error:
        raise BackupError(_explain(error, source, dest)) from error
    staged = Path(name)
    try:
        problems = copy_database(source, staged, connect_target)
        if problems != ["ok"]:
            raise BackupError(
                f"{source} is damaged (integrity check: {'; '.join(problems[:3])}); nothing was written"
            )
    except BackupError:
        _remove_with_sidecars(staged)
        raise
    except (sqlite3.Error, OSError) as error:
        _remove_with_sidecars(staged)
        raise BackupError(_explain(error, source, dest)) from error
    return staged


def _require_dailyq_schema(path: Path, shown_as: Path) -> None:
    if dailyq_schema_version(path) is None:
        raise BackupError(f"{shown_as} is a SQLite file but not a dailyq database; nothing was replaced")


def _swap_in(staged: Path, db_path: Path) -> Path | None:
    # The old file moves aside together with its -wal (which may hold committed rows after a
    # crash); leaving that WAL under the database's name would replay it into the restored file.
    kept = None
    if db_path.exists():
        kept = db_path.with_name(f"{db_path.name}.replaced-{datetime.now(UTC):%Y%m%d-%H%M%S}")
        os.replace(db_path, kept)
        with contextlib.suppress(FileNotFoundError):
            os.replace(_sidecar(db_path, "-wal"), _sidecar(kept, "-wal"))
    with contextlib.suppress(FileNotFoundError):
        os.remove(_sidecar(db_path, "-shm"))  # only an index of the WAL; rebuilt on open
    os.replace(staged, db_path)
    _sync_directory(db_path.parent)
    return kept


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _remove_with_sidecars(path: Path) -> None:
    for name in (path, *(_sidecar(path, s) for s in ("-journal", "-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _explain(error: sqlite3.Error | OSError, source: Path, dest: Path) -> str:
    text = str(error)
    if getattr(error, "errno", None) == errno.ENOSPC or "disk is full" in text:
        size_mb = source.stat().st_size / 1e6
        return (
            f"not enough free space in {dest.parent} for a copy of {source} ({size_mb:.1f} MB); "
            "nothing was written"
        )
    if isinstance(error, OSError):
        return f"cannot write {dest}: {error.strerror or text}"
    if "unable to open" in text:
        return f"cannot open {source} or write in {dest.parent}: check both paths and permissions"
    if "malformed" in text:
        return f"{source} is damaged ({text}); nothing was written"
    if "not a database" in text:
        return f"{source} is not a SQLite database; nothing was written"
    return f"copying {source} to {dest} failed: {text}"
