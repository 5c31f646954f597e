"""Every table and column, with the kind of value it holds, for moving rows between backends.

`dailyq copy-db` reads rows from one backend and writes them to another. Each backend stores some
kinds its own way (SQLite: flags as 0/1, instants and days as ISO text; PostgreSQL: boolean,
timestamptz, date, jsonb), so rows travel in one neutral form, per column kind:

    TEXT str · INTEGER int · FLAG bool · INSTANT aware UTC datetime · DAY date · JSON str

tests/test_copy_db.py checks this list against both backends' schemas, so a migration that adds a
table or a column fails there until it is added here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    FLAG = "flag"
    INSTANT = "instant"
    DAY = "day"
    JSON = "json"


TEXT, INTEGER, FLAG, INSTANT, DAY, JSON = Kind

EXPORT_BATCH = 5000  # rows per batch that copy-db moves

# In an order that inserts each row after the rows it refers to.
TABLES: dict[str, dict[str, Kind]] = {
    "chats": {
        "key": TEXT,
        "platform": TEXT,
        "chat_id": TEXT,
        "thread_id": TEXT,
        "is_group": FLAG,
        "settings": JSON,
        "subscribed": FLAG,
        "schedule_from": INSTANT,
        "created_at": INSTANT,
        "platform_lang": TEXT,
        "revision": INTEGER,
    },
    "users": {"key": TEXT, "name": TEXT, "lang": TEXT, "created_at": INSTANT},
    "posts": {
        "id": INTEGER,
        "chat_key": TEXT,
        "question_id": TEXT,
        "kind": TEXT,
        "user_key": TEXT,
        "local_date": DAY,
        "status": TEXT,
        "message_id": TEXT,
        "cycle": INTEGER,
        "created_at": INSTANT,
        "sent_at": INSTANT,
        "reveal_due_at": INSTANT,
        "revealed_at": INSTANT,
        "reveal_status": TEXT,
    },
    "open_questions": {
        "user_key": TEXT,
        "chat_key": TEXT,
        "post_id": INTEGER,
        "filter": TEXT,
        "opened_at": INSTANT,
    },
    "attempts": {
        "id": INTEGER,
        "post_id": INTEGER,
        "user_key": TEXT,
        "chat_key": TEXT,
        "question_id": TEXT,
        "text": TEXT,
        "hidden": FLAG,
        "current": FLAG,
        "local_date": DAY,
        "created_at": INSTANT,
        "grade": TEXT,
        "graded_at": INSTANT,
    },
    "reviews": {
        "user_key": TEXT,
        "question_id": TEXT,
        "card": TEXT,
        "due_at": INSTANT,
        "updated_at": INSTANT,
        "post_id": INTEGER,
        "previous_card": TEXT,
    },
    "feedback": {
        "post_id": INTEGER,
        "user_key": TEXT,
        "question_id": TEXT,
        "digest": TEXT,
        "state": TEXT,
        "review": TEXT,
        "created_at": INSTANT,
    },
    "feedback_cache": {"question_id": TEXT, "digest": TEXT, "review": TEXT, "created_at": INSTANT},
    "feedback_usage": {"scope": TEXT, "day": DAY, "requests": INTEGER},
    "secrets": {"name": TEXT, "value": TEXT},
}

# The order rows are read in, so two copies list them alike: each table's primary key.
ORDER: dict[str, str] = {
    "chats": "key",
    "users": "key",
    "posts": "id",
    "open_questions": "user_key, chat_key",
    "attempts": "id",
    "reviews": "user_key, question_id",
    "feedback": "post_id, user_key",
    "feedback_cache": "question_id, digest",
    "feedback_usage": "scope, day",
    "secrets": "name",
}


def column_list(columns: Iterable[str]) -> str:
    """Columns for a SELECT or INSERT, quoted (`text`, `key`, `current` and `filter` are keywords)."""
    return ", ".join(f'"{column}"' for column in columns)


class RowCountMismatch(Exception):
    """A copy does not hold the rows it should; it was rolled back."""


def check_row_counts(found: Mapping[str, int], expected: Mapping[str, int]) -> None:
    """Raise RowCountMismatch, naming each table that differs, unless `found` is `expected`."""
    wrong = [f"{table}: {found[table]} rows, expected {expected[table]}" for table in TABLES if found[table] != expected[table]]
    if wrong:
        raise RowCountMismatch("; ".join(wrong))
