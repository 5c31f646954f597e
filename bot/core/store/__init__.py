"""The store: the only place that speaks SQL. Everything else calls its methods with plain values
and gets plain values (records.py) back; no connection, row or SQL text leaves this package.

`Store` (api.py) is the API; `open_store(db)` opens the database a setting names: today a SQLite
file (sqlite.py).
"""

from __future__ import annotations

from pathlib import Path

from bot.core.store.api import Store
from bot.core.store.records import (
    AnswerOutcome,
    Attempt,
    ChatRow,
    ClaimOutcome,
    DatabaseBusy,
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


async def open_store(db: str | Path) -> Store:
    """Open (creating and migrating as needed) the database `db` names: a SQLite file path."""
    if str(db).startswith(("postgresql://", "postgres://")):
        raise ValueError("PostgreSQL is not supported yet: DAILYQ_DB must be a SQLite file")
    return await SQLiteStore.open(db)


__all__ = [
    "AnswerOutcome",
    "Attempt",
    "ChatRow",
    "ClaimOutcome",
    "DatabaseBusy",
    "DueReveal",
    "FeedbackClaim",
    "FeedbackRecord",
    "FeedbackState",
    "OpenQuestion",
    "Post",
    "PostKind",
    "PostStatus",
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
