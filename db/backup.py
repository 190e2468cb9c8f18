"""A consistent copy of the SQLite database while the bot runs (SQLite's online backup API);
scheduled backups into BACKUP_DIR, the oldest beyond BACKUP_KEEP removed; the checks a file
passes before `python -m bot restore` puts it in place (bot/restore.py)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ValueError("backup works on a SQLite file database; use pg_dump for PostgreSQL")
    return Path(url.database)


class BackupInterrupted(Exception):
    """`stop` was set (the bot is shutting down): the copy was abandoned."""


def backup(database_url: str, target: Path, stop: threading.Event | None = None) -> int:
    """Copy the live database to `target` (a new file); returns the pages copied. With `stop`,
    the copy is abandoned between two steps once it is set (BackupInterrupted)."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise FileNotFoundError(f"no database at {source_path}")
    if target.exists():
        raise FileExistsError(f"{target} exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    pages = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total
        if stop is not None and stop.is_set():
            raise BackupInterrupted(f"stopped with {remaining} of {total} pages to copy")

    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    destination = sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination, pages=256, progress=progress, sleep=0.005)
        check = destination.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"backup failed its integrity check: {check}")
    finally:
        destination.close()
        source.close()
    return pages


BACKUP_PREFIX = "bot-"  # scheduled backups: bot-20261126T101500Z.db in BACKUP_DIR
BACKUP_SUFFIX = ".db"


def backup_into(
    database_url: str,
    directory: Path,
    keep: int,
    now: datetime,
    stop: threading.Event | None = None,
) -> Path:
    """A dated backup in `directory`, then the oldest scheduled backups beyond `keep` removed
    (only files this function names; anything else in the directory is left alone)."""
    target = directory / f"{BACKUP_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}{BACKUP_SUFFIX}"
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        backup(database_url, partial, stop)
    except BaseException:
        partial.unlink(missing_ok=True)  # never a half copy left behind
        raise
    partial.replace(target)  # a file by the final name is always a whole, checked backup
    prune(directory, keep)
    return target


def scheduled_backups(directory: Path) -> list[Path]:
    """The scheduled backups in `directory`, oldest first (their names sort by time)."""
    return sorted(
        path
        for path in directory.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}")
        if path.is_file()
    )


def prune(directory: Path, keep: int) -> list[Path]:
    backups = scheduled_backups(directory)
    removed = backups[: max(0, len(backups) - keep)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def integrity(path: Path) -> str | None:
    """None when `path` is a sound SQLite database, else what is wrong with it."""
    if not path.is_file():
        return f"no file at {path}"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return f"not a SQLite database ({exc})"
    return None if result == "ok" else f"integrity check: {result}"


def backup_if_due(
    database_url: str,
    directory: Path,
    keep: int,
    every_s: float,
    now: datetime,
    stop: threading.Event | None = None,
) -> Path | None:
    """A scheduled backup, unless the newest one is younger than `every_s` (so restarts
    neither skip backups nor pile them up): the new file, or None when none was due."""
    existing = scheduled_backups(directory) if directory.exists() else []
    if existing:
        age = now.timestamp() - existing[-1].stat().st_mtime
        if age < every_s:
            return None
    return backup_into(database_url, directory, keep, now, stop)
