"""/admin stats with several engines: one compact line per engine, within an embed field's 1024 characters."""

from __future__ import annotations

from dataclasses import asdict

from bot import render
from bot.scheduler.models import SchedulerStats
from engine.pool import combined_health
from engine.types import EngineHealth


def stats_of(*healths: EngineHealth) -> SchedulerStats:
    return SchedulerStats(
        queued_jobs=0, queued_images=0, running_jobs=0, members_waiting=0, jobs_last_hour=0, images_last_hour=0,
        all_queued_jobs=0, server_weight=1.0, duty_cycle=1.0, busy_seconds=0.0, backlog_seconds=0.0,
        average_generation_seconds=None, seconds_per_image_step=0.04, paused=False, multiplier=1.0,
        engine=asdict(combined_health(list(healths))),
    )


def h200(busy: bool = False) -> EngineHealth:
    return EngineHealth(ready=True, busy=busy, model="sd-1.5", extra={"max_batch_images": 8.0}, sizes=((512, 512),),
                        free_memory_mb=40 * 1024.0, images_per_second=7.67)


def test_each_engine_shows_its_capacity_and_speed() -> None:
    fields = dict(render.engine_fields(stats_of(h200(busy=True), EngineHealth(ready=False, busy=False))))
    assert fields["Engines"] == "1 of 2 ready"
    assert fields["Each engine"].splitlines() == [
        "1. busy · sd-1.5 · ≤8 img · 7.67 img/s · 512×512 · 40.0 GiB free",
        "2. down · ? · speed n/a",
    ]


def test_one_engine_shows_no_list() -> None:
    assert "Each engine" not in dict(render.engine_fields(stats_of(h200())))


def test_many_engines_fit_one_field() -> None:
    shown = dict(render.engine_fields(stats_of(*[h200() for _ in range(64)])))["Each engine"]
    assert len(shown) <= 1024
    assert shown.endswith("more") and shown.splitlines()[0].startswith("1. idle")
