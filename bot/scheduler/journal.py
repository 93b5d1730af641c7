"""The job journal: admissions, job states, images, and the reads of jobs.

Admissions are group-committed: submits that arrive while a transaction is
being written wait for the next one, which writes all of them (one
``executemany``) together with their members' quota state. A member is told
their job is queued only after the transaction holding it has committed.

Every other write is one awaited ``db.transaction()``. All database work is
counted, so :meth:`Journal.wait_idle` can tell a virtual clock when real I/O
has finished. What members were given (posts, notices) is recorded by
:mod:`.deliveries`, the admin tables are written through the same connection by
:mod:`.admin_tables`, and a start reads everything back in :mod:`.recovery`;
rows are encoded and decoded in :mod:`.rows`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import aiosqlite

from bot.db import Database
from bot.scheduler.models import JobState, JobView
from bot.scheduler.quotas import QuotaState, Who
from bot.scheduler.rows import JOB_COLUMNS, job_row
from engine.types import GeneratedImage, JobResult, SafetyVerdict

log = logging.getLogger(__name__)

QuotaRow = Callable[[Who], QuotaState]
"""Returns a member's current quota state in a server, read at commit time so the newest state is written."""

_INSERT_JOB = """
    INSERT INTO jobs (id, number, idempotency_key, member_id, guild_id, channel_id, prompt, negative_prompt,
                      params, seeds, cost, tier, created_at, mode, style)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (idempotency_key) DO NOTHING
"""
_UPSERT_QUOTA = """
    INSERT INTO quota_state (guild_id, member_id, base_tat_ns, charges, day, day_images) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (guild_id, member_id) DO UPDATE SET base_tat_ns = excluded.base_tat_ns, charges = excluded.charges,
                                          day = excluded.day, day_images = excluded.day_images
"""


class Journal:
    """Reads and writes the scheduler's tables through the one :class:`~bot.db.Database`."""

    def __init__(self, db: Database, quota_row: QuotaRow) -> None:
        self.db = db
        self._quota_row = quota_row
        self._pending: list[tuple[JobView, tuple[object, ...], bytes | None, asyncio.Future[bool]]] = []
        self._has_pending = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # housekeeping

    def start(self) -> None:
        self._committer = asyncio.create_task(self._commit_loop(), name="journal-committer")

    async def close(self) -> None:
        """Commit what is pending, then stop the committer."""
        await self.wait_idle()
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
            self._committer = None

    async def wait_idle(self) -> bool:
        """Wait until no database work is pending or running; True if there was some."""
        if self._idle.is_set():
            return False
        await self._idle.wait()
        return True

    def _update_idle(self) -> None:
        if self._in_flight or self._pending:
            self._idle.clear()
        else:
            self._idle.set()

    @asynccontextmanager
    async def _io(self) -> AsyncIterator[None]:
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._update_idle()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._io(), self.db.transaction() as conn:
            yield conn

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[aiosqlite.Row]:
        async with self._io(), self.db.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def _upsert_quotas(self, conn: aiosqlite.Connection, members: Iterable[Who]) -> None:
        rows = []
        for guild_id, member_id in set(members):
            state = self._quota_row((guild_id, member_id))
            charges = json.dumps([[c.job_id, c.at_ns, c.cost_ns, c.images, c.settled] for c in state.charges])
            rows.append((guild_id, member_id, state.base_tat_ns, charges, state.day, state.day_images))
        if rows:
            await conn.executemany(_UPSERT_QUOTA, rows)

    # admission (group commit)

    def admit(self, view: JobView, key: str, tier: str, init_image: bytes | None = None) -> asyncio.Future[bool]:
        """Queue a new job (with its start image, if any) for the next group commit. The future is True once it is
        durable, False if its idempotency key was already in the table (nothing written), or raises if the commit
        failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((view, job_row(view, key, tier), init_image, future))
        self._has_pending.set()
        self._update_idle()
        return future

    async def _commit_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            batch, self._pending = self._pending, []
            self._has_pending.clear()
            self._in_flight += 1  # in flight from here until every waiter has its answer
            try:
                conflicts = await self._write_admissions([(view, row, image) for view, row, image, _ in batch])
            except Exception as exc:
                log.exception("could not journal %d admissions", len(batch))
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for view, _, _, future in batch:
                    if not future.done():
                        future.set_result(view.job_id not in conflicts)
            finally:
                self._in_flight -= 1
                self._update_idle()

    async def _write_admissions(self, jobs: list[tuple[JobView, tuple[object, ...], bytes | None]]) -> set[int]:
        async with self.transaction() as conn:
            cursor = await conn.executemany(_INSERT_JOB, [row for _, row, _ in jobs])
            conflicts: set[int] = set()
            if cursor.rowcount != len(jobs):
                # Some keys were already in the table (older than the in-memory window): find which rows
                # this transaction did not write.
                ids = [view.job_id for view, _, _ in jobs]
                written: set[int] = set()
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    async with conn.execute(f"SELECT id FROM jobs WHERE id IN ({marks})", chunk) as found:
                        written.update(row[0] for row in await found.fetchall())
                conflicts = set(ids) - written
            await conn.executemany(
                "INSERT INTO job_inputs (guild_id, job_id, png) VALUES (?, ?, ?)",
                [(view.guild_id, view.job_id, image) for view, _, image in jobs
                 if image is not None and view.job_id not in conflicts],
            )  # fmt: skip
            await self._upsert_quotas(conn, ((view.guild_id, view.member_id) for view, _, _ in jobs))
        return conflicts

    # job life

    async def mark_running(self, jobs: Sequence[tuple[int, int]], at: float) -> set[int]:
        """Mark queued jobs ``(guild id, job id)`` running (one more attempt); return the ids whose row is missing
        or not queued."""
        refused = set()
        async with self.transaction() as conn:
            for guild_id, job_id in jobs:
                cursor = await conn.execute(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?"
                    " WHERE id = ? AND guild_id = ? AND state = 'queued'",
                    (at, job_id, guild_id),
                )
                if cursor.rowcount != 1:
                    refused.add(job_id)
        return refused

    async def end(self, changes: Sequence[tuple[JobView, JobResult | None]], quota_members: Iterable[Who] = ()) -> set[int]:
        """Write jobs' new states (with the engine's time, and the images of done jobs with their safety
        verdicts) and the members' quota state, in one transaction.

        Returns the ids whose row was missing (nothing could be written for them).
        """
        missing = set()
        async with self.transaction() as conn:
            for view, result in changes:
                cursor = await conn.execute(
                    "UPDATE jobs SET state = ?, error = ?, finished_at = ?, generation_seconds = ?"
                    " WHERE id = ? AND guild_id = ?",
                    (view.state.value, view.error, view.finished_at, result.seconds if result else None,
                     view.job_id, view.guild_id),
                )
                images = result.images if result is not None and view.state is JobState.DONE else ()
                if cursor.rowcount != 1:
                    missing.add(view.job_id)
                elif images:
                    await conn.executemany(
                        "INSERT OR REPLACE INTO job_images (job_id, idx, seed, png) VALUES (?, ?, ?, ?)",
                        [(view.job_id, index, image.seed, image.png) for index, image in enumerate(images)],
                    )
                    await conn.executemany(
                        "INSERT OR REPLACE INTO image_verdicts (guild_id, job_id, idx, label, score, model)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [(view.guild_id, view.job_id, index, image.safety.label, image.safety.score,
                          image.safety.model) for index, image in enumerate(images) if image.safety is not None],
                    )  # fmt: skip
            await self._upsert_quotas(conn, quota_members)
        return missing

    async def prune_images(self, before: float) -> None:
        """Forget the images of jobs delivered before ``before``, or finished before it and undeliverable, and the
        start images of jobs that ended before it."""
        async with self.transaction() as conn:
            await conn.execute(
                "DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM jobs WHERE finished_at < ?"
                " AND state NOT IN ('queued', 'running'))",
                (before,),
            )
            await conn.execute(
                "DELETE FROM job_images WHERE job_id IN (SELECT id FROM jobs WHERE delivered_at < ?1"
                " OR (undeliverable IS NOT NULL AND finished_at < ?1))",
                (before,),
            )

    # reads

    async def job(self, guild_id: int, job_id: int) -> aiosqlite.Row | None:
        """The server's job with this internal id; None for another server's."""
        rows = await self.fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND guild_id = ?",
                                    (job_id, guild_id))
        return rows[0] if rows else None

    async def job_by_number(self, guild_id: int, number: int) -> aiosqlite.Row | None:
        """The server's job #number."""
        rows = await self.fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND number = ?",
                                    (guild_id, number))
        return rows[0] if rows else None

    async def job_by_key(self, guild_id: int, key: str) -> aiosqlite.Row | None:
        rows = await self.fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ? AND guild_id = ?",
                                    (key, guild_id))
        return rows[0] if rows else None

    async def images(self, guild_id: int, job_id: int) -> tuple[GeneratedImage, ...]:
        """The server's job's stored images, each with its safety verdict (None where it was not checked)."""
        rows = await self.fetchall(
            "SELECT i.seed, i.png, v.label, v.score, v.model FROM job_images i"
            " LEFT JOIN image_verdicts v ON v.job_id = i.job_id AND v.idx = i.idx AND v.guild_id = ?2"
            " WHERE i.job_id = (SELECT id FROM jobs WHERE id = ?1 AND guild_id = ?2) ORDER BY i.idx",
            (job_id, guild_id),
        )
        return tuple(
            GeneratedImage(row["seed"], bytes(row["png"]),
                           None if row["label"] is None else SafetyVerdict(row["label"], row["score"], row["model"]))
            for row in rows
        )  # fmt: skip

    async def init_image(self, guild_id: int, job_id: int) -> bytes | None:
        """The server's job's stored start image; None for a job from noise (or once pruned)."""
        rows = await self.fetchall("SELECT png FROM job_inputs WHERE guild_id = ? AND job_id = ?", (guild_id, job_id))
        return bytes(rows[0]["png"]) if rows else None

    async def member_jobs(self, guild_id: int, member_id: int, limit: int) -> list[aiosqlite.Row]:
        """A member's newest jobs in the server first."""
        return await self.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND member_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, member_id, limit),
        )
