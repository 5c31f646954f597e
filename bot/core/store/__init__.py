"""The store: the only place that speaks SQL. Everything else calls its methods with plain values
and gets plain values (records.py) back; no connection, row or SQL text leaves this package.

`Store` (api.py) is the API; `open_store(db)` opens the database a setting names: a SQLite file
(sqlite.py) or a PostgreSQL server (postgresql.py), which several dailyq processes may share.
"""

from __future__ import annotations

from pathlib import Path

from bot.config import is_database_url
from bot.core.store.api import Store
from bot.core.store.postgresql import DEFAULT_POOL_SIZE, PostgreSQLStore
from bot.core.store.records import (
    AnswerOutcome,
    Attempt,
    ChatRow,
    ClaimOutcome,
    DatabaseBusy,
    DatabaseUnavailable,
    DueReveal,
    FeedbackClaim,
    FeedbackRecord,
    FeedbackState,
    OpenQuestion,
    Post,
    PostKind,
    PostStatus,
    RevealStatus,
    Review,
    StaleClaim,
    Standing,
    SubscribedChat,
    UserStats,
    from_iso,
    iso,
)
from bot.core.store.sqlite import SQLiteStore


async def open_store(db: Path | str, *, pool_size: int = DEFAULT_POOL_SIZE, purpose: str = "bot") -> Store:
    """Open (creating and migrating as needed) the database `db` names: a SQLite file path, or a
    `postgresql://` URL, with `pool_size` connections at most, named after `purpose` on the server.
    Raises DatabaseUnavailable when a server cannot be reached or refuses the connection."""
    if isinstance(db, str) and is_database_url(db):
        return await PostgreSQLStore.open(db, pool_size, purpose=purpose)
    return await SQLiteStore.open(db)


__all__ = [
    "AnswerOutcome",
    "Attempt",
    "ChatRow",
    "ClaimOutcome",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "DueReveal",
    "FeedbackClaim",
    "FeedbackRecord",
    "FeedbackState",
    "OpenQuestion",
    "Post",
    "PostKind",
    "PostStatus",
    "PostgreSQLStore",
    "RevealStatus",
    "Review",
    "SQLiteStore",
    "StaleClaim",
    "Standing",
    "Store",
    "SubscribedChat",
    "UserStats",
    "from_iso",
    "iso",
    "open_store",
]
