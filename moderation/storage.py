"""What the moderation stores need from the application's database.

``bot.db.Database`` satisfies this structurally; moderation never imports ``bot``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import aiosqlite


class Database(Protocol):
    """One SQLite connection for reads, and serialised write transactions."""

    conn: aiosqlite.Connection
    """For reads (autocommit, rows as ``aiosqlite.Row``)."""

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … commit, or roll back on error; every write goes through here."""
        ...
