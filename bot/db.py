"""The SQLite database: one writer connection, numbered migrations, online backup.

Every service that stores data receives the one :class:`Database` and writes
through :meth:`Database.transaction`, which serialises writers on a lock so that
coroutines sharing the single connection never interleave their transactions.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "bot.migrations"


class DatabaseError(Exception):
    """The database file cannot be opened or migrated."""


def _migrations() -> list[tuple[int, str, str]]:
    """Return ``(version, name, sql)`` for every ``NNNN_name.sql`` file, in order.

    Versions must run 1, 2, 3, ... without gaps so that ``PRAGMA user_version``
    always names exactly the last migration applied.
    """
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise DatabaseError(f"migration {version:04d}_{name}.sql is out of sequence (expected {expected:04d})")
    return found


class Database:
    """The application's single SQLite connection (WAL, foreign keys, busy timeout).

    Reads may use :attr:`conn` directly; anything that writes, or reads and then
    writes, goes through :meth:`transaction`.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, busy_timeout_ms: int = 5000) -> Database:
        """Open (creating if needed) the database at ``path`` and apply pending migrations."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so transactions are exactly the ones we BEGIN.
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            db = cls(conn, path)
            await db.migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        """Close the connection; pending transactions are rolled back by SQLite."""
        await self.conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a ``BEGIN IMMEDIATE`` transaction: commit on success, roll back on error."""
        async with self._write_lock:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
            except BaseException:
                # Also when BEGIN itself was cancelled: it runs on the connection's thread all the same, and
                # left open it fails every later transaction ("cannot start a transaction within a transaction").
                # Queued behind it, the rollback undoes it (and is a no-op if nothing began).
                await self.conn.rollback()
                raise
            else:
                await self.conn.commit()

    async def user_version(self) -> int:
        """The number of the last migration applied."""
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def migrate(self) -> int:
        """Apply every migration newer than ``PRAGMA user_version``; return the new version."""
        current = await self.user_version()
        migrations = _migrations()
        if current > len(migrations):
            raise DatabaseError(
                f"{self.path} is at schema version {current}, newer than this release knows ({len(migrations)})"
            )
        for version, name, sql in migrations[current:]:
            log.info("applying migration %04d_%s", version, name)
            async with self.transaction() as conn:
                # executescript() would COMMIT our transaction first; run statement by statement instead.
                for statement in _split_statements(sql):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {version}")
        return len(migrations)

    async def backup(self, dest: Path | str) -> None:
        """Copy the live database to ``dest`` with SQLite's online backup API."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(dest) as target:
            await self.conn.backup(target)


def _split_statements(sql: str) -> list[str]:
    """Split a migration script into complete statements (``sqlite3.complete_statement`` decides)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise DatabaseError(f"incomplete SQL statement in migration: {current.strip()[:60]!r}")
    return statements
