"""The metrics' own logic: job events into counts and queue depth, refusal reasons, route labels, deploy files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.discord_metrics import route_of
from bot.metrics import BotMetrics, refusal_reason
from bot.scheduler.errors import InvalidRequest, OverTierLimit, QuotaExceeded, ServiceStopped
from bot.scheduler.events import EventHub, EventKind, JobEvent
from bot.settings import load_settings
from engine.types import GeneratedImage

REPO = Path(__file__).resolve().parents[1]


def event(kind: EventKind, at: float, job_id: int = 1, **fields: object) -> JobEvent:
    return JobEvent(kind, job_id, number=job_id, member_id=7, guild_id=42, channel_id=None, at=at, tier="vip", **fields)


def sample(metrics: BotMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_requeued_job_waits_twice_and_counts_once_with_its_images() -> None:
    metrics = BotMetrics()
    hub = EventHub()
    watcher = metrics.watch_jobs(hub.subscribe())
    job = {"guild": "42", "tier": "vip"}
    for happened in (
        event(EventKind.QUEUED, 10.0),
        event(EventKind.STARTED, 12.0),
        event(EventKind.REQUEUED, 13.0, error="the engine crashed"),
        event(EventKind.QUEUED, 13.0, job_id=2),
    ):
        watcher.observe(happened)
    assert sample(metrics, "dreamqueue_queue_jobs", **job, state="queued") == 2
    assert sample(metrics, "dreamqueue_queue_jobs", **job, state="running") == 0
    for happened in (
        event(EventKind.STARTED, 17.0),
        event(EventKind.DONE, 20.0, images=(GeneratedImage(1, b""), GeneratedImage(2, b""))),
        event(EventKind.CANCELLED, 21.0, job_id=2),
    ):
        watcher.observe(happened)
    assert sample(metrics, "dreamqueue_queue_wait_seconds_count", **job) == 2
    assert sample(metrics, "dreamqueue_queue_wait_seconds_sum", **job) == 2.0 + 4.0
    assert sample(metrics, "dreamqueue_time_to_first_image_seconds_sum", **job) == 10.0
    assert sample(metrics, "dreamqueue_images_total", **job) == 2
    assert sample(metrics, "dreamqueue_jobs_requeued_total", **job) == 1
    assert sample(metrics, "dreamqueue_jobs_finished_total", **job, outcome="done") == 1
    assert sample(metrics, "dreamqueue_jobs_finished_total", **job, outcome="cancelled") == 1
    assert sample(metrics, "dreamqueue_queue_jobs", **job, state="queued") == 0  # still reported, at zero
    await watcher.close()


async def test_an_interrupted_job_is_requeued_or_ends_as_the_event_says() -> None:
    metrics = BotMetrics()
    watcher = metrics.watch_jobs(EventHub().subscribe())
    watcher.observe(event(EventKind.INTERRUPTED, 1.0, requeued=True))
    watcher.observe(event(EventKind.INTERRUPTED, 1.0, job_id=2))
    job = {"guild": "42", "tier": "vip"}
    assert sample(metrics, "dreamqueue_queue_jobs", **job, state="queued") == 1
    assert sample(metrics, "dreamqueue_jobs_finished_total", **job, outcome="interrupted") == 1
    await watcher.close()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (QuotaExceeded("daily", 10.0, 0.0, "Out of images for today."), "daily"),
        (QuotaExceeded("burst", 10.0, 0.0, "Slow down."), "burst"),
        (OverTierLimit("images per request", 4, 6, "default"), "over_tier_limit"),
        (InvalidRequest("steps", "too many"), None),
        (ServiceStopped(), None),
    ],
)
def test_refusal_reasons(error: Exception, reason: str | None) -> None:
    assert refusal_reason(error) == reason  # type: ignore[arg-type]


def test_admission_counts_refusals_and_lets_them_through() -> None:
    metrics = BotMetrics()
    with pytest.raises(QuotaExceeded), metrics.admission():
        raise QuotaExceeded("daily", 10.0, 0.0, "Out of images for today.")
    assert sample(metrics, "dreamqueue_quota_refusals_total", reason="daily") == 1
    assert sample(metrics, "dreamqueue_quota_refusals_total", reason="burst") == 0


def test_routes_carry_no_ids_tokens_or_file_names() -> None:
    assert route_of("/api/v10/channels/123/messages/456") == "/channels/{id}/messages/{id}"
    assert route_of("/api/v10/interactions/123/aW50ZXJhY3Rpb24/callback") == "/interactions/{id}/{token}/callback"
    assert route_of("/api/v10/webhooks/1/dG9rZW4/messages/@original") == "/webhooks/{id}/{token}/messages/@original"
    assert route_of("/api/v10/gateway/bot") == "/gateway/bot"
    assert route_of("/attachments/1/2/grid.png") == "other"


def test_the_compose_stack_scrapes_the_port_its_bot_config_serves() -> None:
    deploy = REPO / "deploy"
    settings = load_settings(deploy / "config.yaml", env={})
    scrape = yaml.safe_load((deploy / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == [f"bot:{settings.metrics.port}"]
    assert settings.metrics.host == "0.0.0.0"
    compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    mounts = [volume.split(":")[0] for service in compose["services"].values() for volume in service.get("volumes", [])]
    assert all((deploy / mount).exists() for mount in mounts if mount.startswith("./"))
    dashboard = json.loads((deploy / "grafana" / "dreamqueue.json").read_text())
    assert all(target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []))
