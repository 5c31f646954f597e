"""The only reader of os.environ and ./.env: one frozen Settings object; command-line flags override it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from dotenv import dotenv_values


def _bundled_content() -> Path:
    """The bank that ships with dailyq: content/ at the top of a checkout, mapped into the package
    as bot/content when a wheel is built (pyproject.toml), so an installed dailyq has it too."""
    packaged = Path(__file__).parent / "content"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "content"


BUNDLED_CONTENT = _bundled_content()
# Read from the working directory by every command, as docker compose's env_file reads it.
ENV_FILE = ".env"


class ConfigError(ValueError):
    """A variable has a value dailyq cannot use; the message names the variable."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _integers(name: str, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _split(value))
    except ValueError:
        raise ConfigError(f"{name} must be whole numbers separated by commas, got {value!r}") from None


def _shards(count: str | None, ids: str | None) -> tuple[int | None, tuple[int, ...]]:
    """DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS, checked against each other."""
    counts = _integers("DISCORD_SHARD_COUNT", count or "")
    shard_ids = _integers("DISCORD_SHARD_IDS", ids or "")
    if not counts:
        if shard_ids:
            raise ConfigError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, the number of shards in all")
        return None, ()
    if len(counts) > 1 or counts[0] < 1:
        raise ConfigError(f"DISCORD_SHARD_COUNT must be one whole number of at least 1, got {count!r}")
    wrong = [shard for shard in shard_ids if not 0 <= shard < counts[0]]
    if wrong or len(set(shard_ids)) != len(shard_ids):
        raise ConfigError(
            f"DISCORD_SHARD_IDS must be different shards from 0 to {counts[0] - 1} (DISCORD_SHARD_COUNT), got {ids!r}"
        )
    return counts[0], shard_ids


def database_location(value: str) -> Path | str:
    """DAILYQ_DB (or --db): a `postgresql://` URL stays text; anything else is a SQLite file."""
    return value if is_database_url(value) else Path(value)


def is_database_url(db: Path | str) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def database_password(db: Path | str) -> str | None:
    password = urlsplit(db).password if isinstance(db, str) and is_database_url(db) else None
    return unquote(password) if password else None


def shown_database(db: Path | str) -> str:
    """The database as messages name it: a URL with its password replaced by ***."""
    if not (isinstance(db, str) and is_database_url(db)):
        return str(db)
    parts = urlsplit(db)
    if parts.password is None:
        return db
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))


Number = TypeVar("Number", int, float)


def _positive(name: str, value: str | None, default: Number) -> Number:
    """A number above zero of the default's type (a whole number for a whole default)."""
    if value is None:
        return default
    try:
        number = type(default)(value)
    except ValueError:
        number = type(default)(0)
    if not 0 < number < float("inf"):
        kind = "whole number" if isinstance(default, int) else "number"
        raise ConfigError(f"{name} must be a positive {kind}, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    # A SQLite file, or a PostgreSQL URL, which may hold a password: see shown_database.
    db: Path | str = field(default=Path("./data/dailyq.sqlite3"), repr=False)
    db_pool_size: int = 10  # PostgreSQL connections this process may open
    content: Path = BUNDLED_CONTENT
    timezone: str = "UTC"
    post_time: str = "09:00"
    lang: str = "en"
    catch_up: str | None = None  # None: until the end of the chat's local day
    owners: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "text"
    http_port: int | None = None
    telegram_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_listen: str = "0.0.0.0:8443"
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    discord_token: str | None = field(default=None, repr=False)
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None
    discord_guild_ids: tuple[int, ...] = ()
    discord_message_content: bool = False  # the privileged intent: read answers typed in threads
    discord_shard_count: int | None = None  # None: as many as Discord recommends, all in this process
    discord_shard_ids: tuple[int, ...] = ()  # this process's shards of discord_shard_count; empty: all
    # Answer feedback (extra `feedback`): on when a URL and a model are set; the key may be empty (Ollama).
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout: float = 60.0  # seconds for one review, the client's retries included
    llm_user_daily: int = 10  # reviews one member may ask for per UTC day
    llm_chat_daily: int = 100  # reviews asked from one chat's posts per UTC day
    env_file: Path | None = None  # the .env these settings were read from, if any

    @classmethod
    def load(cls, folder: Path | None = None) -> Settings:
        """The environment over `folder`/.env (the working directory's); the environment wins."""
        path = (Path.cwd() if folder is None else folder) / ENV_FILE
        if not path.is_file():
            return cls.from_env()
        from_file = {name: value for name, value in dotenv_values(path).items() if value is not None}
        return replace(cls.from_env({**from_file, **os.environ}), env_file=path.resolve())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        port = _integers("DAILYQ_HTTP_PORT", get("DAILYQ_HTTP_PORT") or "")
        shard_count, shard_ids = _shards(get("DISCORD_SHARD_COUNT"), get("DISCORD_SHARD_IDS"))
        llm_url, llm_model = get("DAILYQ_LLM_URL"), get("DAILYQ_LLM_MODEL")
        if bool(llm_url) != bool(llm_model):
            raise ConfigError("DAILYQ_LLM_URL and DAILYQ_LLM_MODEL turn feedback on together: set both or neither")
        return cls(
            db=database_location(get("DAILYQ_DB") or str(defaults.db)),
            db_pool_size=_positive("DAILYQ_DB_POOL_SIZE", get("DAILYQ_DB_POOL_SIZE"), defaults.db_pool_size),
            content=Path(get("DAILYQ_CONTENT") or defaults.content),
            timezone=get("DAILYQ_TIMEZONE") or defaults.timezone,
            post_time=get("DAILYQ_POST_TIME") or defaults.post_time,
            lang=get("DAILYQ_LANG") or defaults.lang,
            catch_up=get("DAILYQ_CATCH_UP"),
            owners=_split(get("DAILYQ_OWNERS") or ""),
            log_level=(get("DAILYQ_LOG_LEVEL") or defaults.log_level).upper(),
            log_format=get("DAILYQ_LOG_FORMAT") or defaults.log_format,
            http_port=port[0] if port else None,
            telegram_token=get("TELEGRAM_BOT_TOKEN"),
            telegram_api_url=get("TELEGRAM_API_URL") or defaults.telegram_api_url,
            telegram_webhook_url=get("TELEGRAM_WEBHOOK_URL"),
            telegram_webhook_listen=get("TELEGRAM_WEBHOOK_LISTEN") or defaults.telegram_webhook_listen,
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
            discord_token=get("DISCORD_BOT_TOKEN"),
            discord_api_url=get("DISCORD_API_URL") or defaults.discord_api_url,
            discord_gateway_url=get("DISCORD_GATEWAY_URL"),
            discord_guild_ids=_integers("DISCORD_GUILD_IDS", get("DISCORD_GUILD_IDS") or ""),
            discord_message_content=(get("DISCORD_MESSAGE_CONTENT") or "0").lower() in ("1", "true", "yes", "on"),
            llm_url=llm_url,
            llm_model=llm_model,
            llm_api_key=get("DAILYQ_LLM_API_KEY"),
            llm_timeout=_positive("DAILYQ_LLM_TIMEOUT", get("DAILYQ_LLM_TIMEOUT"), defaults.llm_timeout),
            llm_user_daily=_positive("DAILYQ_LLM_USER_DAILY", get("DAILYQ_LLM_USER_DAILY"), defaults.llm_user_daily),
            llm_chat_daily=_positive("DAILYQ_LLM_CHAT_DAILY", get("DAILYQ_LLM_CHAT_DAILY"), defaults.llm_chat_daily),
            discord_shard_count=shard_count,
            discord_shard_ids=shard_ids,
        )

    @property
    def feedback_configured(self) -> bool:
        return bool(self.llm_url and self.llm_model)

    def override(self, **flags: object) -> Settings:
        """Apply command-line flags; a flag left as None keeps the environment's value."""
        return replace(self, **{k: v for k, v in flags.items() if v is not None})
