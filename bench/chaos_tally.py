"""What became of every job of a chaos run, read from the journal and the fake Discord's record.

A job's grid is found by the footer that ``bot/render.py`` puts on every embed
about a job ("Job #N", N its number in its server, the server known by the
channel) on a message with attachments; a member is told of a job that ended
without images by the ended embed (same footer) or by the channel notice naming
"job #N". Quotas are checked against the jobs that ran:
a member's images charged today must be the images of their jobs that were not
refunded (queued, running or done), and no charge may be left for a job that
failed, was interrupted or cancelled, or was never journaled.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.delivery import LEFT_NOT_QUEUED as NOT_QUEUED
from tests.fakediscord import FakeDiscord

FOOTER = re.compile(r"^Job #(\d+)$")
NOTICE = re.compile(r"your job #(\d+) ended")
ENDED_TITLES = ("❌ Failed", "⚠️ Interrupted by a restart", "✖️ Cancelled")
NOT_REFUNDED = ("queued", "running", "done")
DAY_SECONDS = 86_400
Job = tuple[int, int]
"""A job as members know it: its server's id and its number there."""


@dataclass
class Tally:
    """The counts a chaos run is judged by, with the journal's job ids (not numbers) behind the bad ones."""

    interactions: int = 0
    refused: int = 0
    """Answered privately (quota, queue full...): no job."""
    unanswered: int = 0
    """Sent while the bot was dying: nothing came back and no job was made."""
    told_not_queued: int = 0
    """Deferred publicly, never journaled, and answered by the next start: "restarted before it was queued"."""
    acknowledged_not_admitted: list[int] = field(default_factory=list)
    """Interactions the bot deferred publicly but never journaled: the member saw "thinking..." and nothing more."""
    admitted: int = 0
    delivered_once: int = 0
    told: int = 0
    """Failed, interrupted or cancelled, with the member told."""
    posted_twice: list[int] = field(default_factory=list)
    extra_posts: int = 0
    taken_back: int = 0
    """Extra posts the bot deleted again (the member was still notified twice)."""
    record_differs: list[int] = field(default_factory=list)
    """Posted once, but the journal records another message (or none)."""
    undeliverable: list[int] = field(default_factory=list)
    lost_done: list[int] = field(default_factory=list)
    lost_failed: list[int] = field(default_factory=list)
    lost_interrupted: list[int] = field(default_factory=list)
    lost_cancelled: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    """Still queued or running when the run ended."""
    states: dict[str, int] = field(default_factory=dict)
    quota_members: int = 0
    """(server, member) pairs with a job or a quota row."""
    quota_wrong: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Admitted, but neither delivered nor the member told."""
        return len(self.lost_done) + len(self.lost_failed) + len(self.lost_interrupted) + len(self.lost_cancelled)

    def lines(self) -> list[str]:
        """The counts, one per line, as the bench prints them."""
        return [
            (f"interactions sent:            {self.interactions}"
             f" (refused {self.refused}, unanswered {self.unanswered}, told not queued {self.told_not_queued},"
             f" acknowledged but never answered {len(self.acknowledged_not_admitted)})"),
            f"admitted jobs:                {self.admitted}  by state: {self.states}",
            f"delivered exactly once:       {self.delivered_once}",
            (f"posted twice or more:         {len(self.posted_twice)}{_few(self.posted_twice)}"
             f" ({self.extra_posts} extra posts, {self.taken_back} taken back)"),
            f"delivered, other record:      {len(self.record_differs)}{_few(self.record_differs)}",
            f"ended, member told:           {self.told}",
            f"undeliverable (recorded):     {len(self.undeliverable)}{_few(self.undeliverable)}",
            f"lost:                         {self.lost}",
            f"  done, never posted:         {len(self.lost_done)}{_few(self.lost_done)}",
            f"  failed, member not told:    {len(self.lost_failed)}{_few(self.lost_failed)}",
            f"  interrupted, not told:      {len(self.lost_interrupted)}{_few(self.lost_interrupted)}",
            f"  cancelled, not told:        {len(self.lost_cancelled)}{_few(self.lost_cancelled)}",
            f"unfinished at the end:        {len(self.unfinished)}{_few(self.unfinished)}",
            f"quota: member quotas checked {self.quota_members}, wrong {len(self.quota_wrong)}",
            *(f"  {line}" for line in self.quota_wrong[:10]),
        ]


def _few(ids: list[int]) -> str:
    """The first few ids of a bad count, to look them up."""
    return f" {ids[:10]}" if ids else ""


def _read_journal(db_path: Path) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    """The jobs and the quota rows, read without writing."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        jobs = conn.execute(
            "SELECT id, guild_id, number, idempotency_key, member_id, seeds, state, created_at, result_message_id,"
            " undeliverable FROM jobs ORDER BY id"
        ).fetchall()
        quotas = conn.execute("SELECT guild_id, member_id, charges, day, day_images FROM quota_state").fetchall()
    return jobs, quotas


def _number_of(embeds: tuple[dict[str, object], ...]) -> int | None:
    """The number (in its server) of the job a message is about, by its first embed's footer; None for others."""
    footer = embeds[0].get("footer") if embeds else None
    match = FOOTER.match(str(footer.get("text", ""))) if isinstance(footer, dict) else None
    return int(match[1]) if match else None


def _read_discord(fake: FakeDiscord) -> tuple[dict[Job, set[int]], set[Job]]:
    """Per job (server, number), every message that ever carried its grid; and the jobs whose member was told
    it ended."""
    grids: dict[Job, set[int]] = defaultdict(set)
    told: set[Job] = set()
    for event in fake.events:
        message = event.message
        if message is None or message.deleted:
            continue
        guild = fake.channel(message.channel_id).guild
        guild_id = guild.id if guild is not None else 0
        number = _number_of(message.embeds)
        if number is not None and message.attachments:
            grids[guild_id, number].add(message.id)
        elif number is not None and message.embeds[0].get("title") in ENDED_TITLES:
            told.add((guild_id, number))
        told.update((guild_id, int(found)) for found in NOTICE.findall(message.content))
    return grids, told


def _count_interactions(fake: FakeDiscord, keys: set[str], tally: Tally) -> None:
    """Sort the ``/dream`` interactions sent by what came of them; ``keys``: those the journal admitted."""
    for interaction in fake.interactions.values():
        tally.interactions += 1
        if str(interaction.id) in keys:
            continue
        if not interaction.events:
            tally.unanswered += 1
        elif any(event.ephemeral for event in interaction.events):
            tally.refused += 1
        elif any(NOT_QUEUED in (event.content or "") for event in interaction.events):
            tally.told_not_queued += 1
        else:
            tally.acknowledged_not_admitted.append(interaction.id)


def _check_quotas(jobs: list[sqlite3.Row], quotas: list[sqlite3.Row], tally: Tally) -> None:
    """Each member's quota row against their jobs: today's images charged, and no charge left un-refunded."""
    by_member: dict[tuple[int, int], list[sqlite3.Row]] = defaultdict(list)
    for job in jobs:
        by_member[job["guild_id"], job["member_id"]].append(job)
    states = {job["id"]: job["state"] for job in jobs}
    rows = {(row["guild_id"], row["member_id"]): row for row in quotas}
    for who in sorted(by_member.keys() | rows.keys()):
        tally.quota_members += 1
        row = rows.get(who)
        day, charged, charges = (row["day"], row["day_images"], json.loads(row["charges"])) if row else (None, 0, [])
        expected = sum(
            len(json.loads(job["seeds"])) for job in by_member[who]
            if job["state"] in NOT_REFUNDED and int(job["created_at"] // DAY_SECONDS) == day
        )
        stale = [charge[0] for charge in charges if states.get(charge[0]) not in NOT_REFUNDED]  # [job id, ...]
        if charged != expected or stale:
            tally.quota_wrong.append(
                f"member {who[1]} in server {who[0]}: {charged} images charged today, {expected} ran or wait;"
                f" charges kept for jobs {stale} (refunded or never journaled)"
            )


def tally_run(db_path: Path, fake: FakeDiscord) -> Tally:
    """Judge a finished run (its bot stopped) by its journal at ``db_path`` and what ``fake`` recorded.

    Quota days are counted from midnight UTC (``quotas.daily_reset_hour_utc: 0``).
    """
    jobs, quotas = _read_journal(db_path)
    grids, told = _read_discord(fake)
    tally = Tally(admitted=len(jobs))
    _count_interactions(fake, {job["idempotency_key"] for job in jobs}, tally)
    states: dict[str, int] = defaultdict(int)
    for job in jobs:
        job_id, state = job["id"], job["state"]
        states[state] += 1
        posts = grids.get((job["guild_id"], job["number"]), set())
        if len(posts) > 1:
            tally.posted_twice.append(job_id)
            tally.extra_posts += len(posts) - 1
            tally.taken_back += sum(fake.messages[post].deleted for post in posts)
        elif state == "done" and posts:
            if job["result_message_id"] in posts and not fake.messages[job["result_message_id"]].deleted:
                tally.delivered_once += 1
            else:
                tally.record_differs.append(job_id)
        elif state == "done":
            (tally.undeliverable if job["undeliverable"] else tally.lost_done).append(job_id)
        elif state in ("queued", "running"):
            tally.unfinished.append(job_id)
        elif (job["guild_id"], job["number"]) in told:
            tally.told += 1
        else:
            lost = {"failed": tally.lost_failed, "interrupted": tally.lost_interrupted}
            lost.get(state, tally.lost_cancelled).append(job_id)
    tally.states = dict(states)
    _check_quotas(jobs, quotas, tally)
    return tally
