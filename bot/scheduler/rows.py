"""Encoding and decoding the scheduler's rows: the ``jobs`` row of a new job, a job view from a row, quota state."""

from __future__ import annotations

import dataclasses
import json
import logging

import aiosqlite

from bot.scheduler.models import JobState, JobView
from bot.scheduler.modes import MODES
from bot.scheduler.quotas import Charge, QuotaState
from engine.types import GenerationParams

log = logging.getLogger(__name__)

JOB_COLUMNS = """
    id, number, member_id, guild_id, channel_id, state, prompt, negative_prompt, params, seeds, cost,
    created_at, attempts, started_at, finished_at, error, result_message_id, tier, undeliverable, mode, style,
    status_message_id
"""
"""The columns :func:`job_view` reads."""


def job_row(view: JobView, key: str, tier: str) -> tuple[object, ...]:
    """The ``jobs`` row of a job being admitted (in the journal's insert order)."""
    return (
        view.job_id, view.number, key, view.member_id, view.guild_id, view.channel_id, view.prompt,
        view.negative_prompt, encode_params(view.params), json.dumps(list(view.seeds)), view.cost, tier,
        view.created_at, view.mode, view.style,
    )


def encode_params(params: GenerationParams) -> str:
    return json.dumps(dataclasses.asdict(params), sort_keys=True)


def job_view(row: aiosqlite.Row) -> JobView:
    """Decode a ``jobs`` row; raises ``ValueError`` (or ``TypeError``/``KeyError``) on a corrupt row."""
    params = GenerationParams(**json.loads(row["params"]))
    seeds = json.loads(row["seeds"])
    if not isinstance(seeds, list) or not all(isinstance(seed, int) for seed in seeds):
        raise ValueError(f"seeds is not a list of integers: {row['seeds']!r}")
    if row["mode"] not in MODES:
        raise ValueError(f"mode is not one of {', '.join(MODES)}: {row['mode']!r}")
    return JobView(
        job_id=row["id"], number=row["number"], member_id=row["member_id"], guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        state=JobState(row["state"]), prompt=row["prompt"], negative_prompt=row["negative_prompt"], params=params,
        seeds=tuple(seeds), cost=row["cost"], created_at=row["created_at"], attempts=row["attempts"],
        started_at=row["started_at"], finished_at=row["finished_at"], error=row["error"],
        result_message_id=row["result_message_id"], undeliverable=row["undeliverable"], mode=row["mode"],
        style=row["style"], status_message_id=row["status_message_id"],
    )


def salvage_view(row: aiosqlite.Row) -> JobView:
    """What can be shown of a row that :func:`job_view` cannot decode: ids, state and prompt, default parameters."""
    try:
        state = JobState(row["state"])
    except ValueError:
        state = JobState.FAILED
    return JobView(
        job_id=row["id"], number=row["number"], member_id=row["member_id"], guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        state=state, prompt=str(row["prompt"]), negative_prompt="", params=GenerationParams(), seeds=(), cost=0,
        created_at=row["created_at"], attempts=row["attempts"], started_at=row["started_at"],
        finished_at=row["finished_at"], error=row["error"], result_message_id=row["result_message_id"],
        undeliverable=row["undeliverable"], status_message_id=row["status_message_id"],
    )


def read_view(row: aiosqlite.Row) -> JobView:
    """Decode a row for display, falling back to :func:`salvage_view` (logged) if it is corrupt."""
    try:
        return job_view(row)
    except (ValueError, TypeError, KeyError) as exc:
        log.error("job %s has a corrupt journal row (%s)", row["id"], exc)
        return salvage_view(row)


def quota_state(row: aiosqlite.Row) -> QuotaState:
    """Decode a ``quota_state`` row; unreadable pending charges are logged and dropped (the rest is kept)."""
    try:
        charges = [Charge(int(a), int(b), int(c), int(d), bool(e)) for a, b, c, d, e in json.loads(row["charges"])]
    except (ValueError, TypeError) as exc:
        log.error("quota state of member %s in server %s has unreadable charges (%s); dropping them",
                  row["member_id"], row["guild_id"], exc)
        charges = []
    return QuotaState(row["base_tat_ns"], charges, row["day"], row["day_images"])
