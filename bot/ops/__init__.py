"""Operations: logging with redaction, health and metrics over HTTP, SQLite backups and restores."""
