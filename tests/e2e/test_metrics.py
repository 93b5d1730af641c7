"""The monitoring endpoint: ``/metrics`` in Prometheus's format with every listed metric; ``/healthz``; ``/readyz``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bot.app import App
from bot.db import Database
from bot.discord_metrics import DiscordMetrics
from bot.health import Readiness
from engine.simulated import SimulatedEngine
from tests.e2e.conftest import World
from tests.e2e.test_moderation import flag

LISTED = (
    "dreamqueue_queue_jobs",
    "dreamqueue_queue_wait_seconds",
    "dreamqueue_images",
    "dreamqueue_jobs_finished",
    "dreamqueue_jobs_requeued",
    "dreamqueue_engine_batches",
    "dreamqueue_engine_busy_seconds",
    "dreamqueue_engine_ready",
    "dreamqueue_engine_restarts",
    "dreamqueue_time_to_first_image_seconds",
    "dreamqueue_prompts_blocked",
    "dreamqueue_images_withheld",
    "dreamqueue_flags",
    "dreamqueue_review_actions",
    "dreamqueue_quota_refusals",
    "dreamqueue_discord_request_duration_seconds",
    "dreamqueue_discord_rate_limited",
    "dreamqueue_discord_gateway_events",
    "dreamqueue_discord_gateway_latency_seconds",
    "dreamqueue_discord_gateway_connected",
    "dreamqueue_event_loop_lag_seconds",
)
"""The families (names as the parser gives them: counters without ``_total``) the issue lists."""


async def get(app: App, path: str) -> tuple[int, str]:
    """``GET path`` on the app's monitoring port: the status and the body."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{app.monitoring.port}{path}") as answer:
        return answer.status, await answer.text()


async def scrape(app: App) -> dict[str, list[Sample]]:
    """The samples of ``/metrics``, by family name, as Prometheus's own parser reads them."""
    status, text = await get(app, "/metrics")
    assert status == 200
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample called ``name`` whose labels include ``labels``."""
    [found] = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return found.value


async def test_metrics_after_one_dream_carry_every_listed_metric(world: World) -> None:
    app = await world.start(metrics={"port": 0})
    guild = str(world.guild.id)
    await world.result(await world.dream(world.alice, prompt="a lighthouse at dusk", count=2))

    families = await scrape(app)
    assert [name for name in LISTED if name not in families] == []
    assert value(families["dreamqueue_images"], "dreamqueue_images_total", guild=guild, tier="default") == 2
    assert value(families["dreamqueue_jobs_finished"], "dreamqueue_jobs_finished_total", outcome="done") == 1
    assert value(families["dreamqueue_queue_wait_seconds"], "dreamqueue_queue_wait_seconds_count", guild=guild) == 1
    waits = families["dreamqueue_time_to_first_image_seconds"]
    assert value(waits, "dreamqueue_time_to_first_image_seconds_count", tier="default") == 1
    assert [s.value for s in families["dreamqueue_queue_jobs"]] == [0, 0]  # queued and running, both empty again
    assert value(families["dreamqueue_engine_batches"], "dreamqueue_engine_batches_total") == 1
    assert value(families["dreamqueue_engine_busy_seconds"], "dreamqueue_engine_busy_seconds_total") > 0
    assert value(families["dreamqueue_engine_restarts"], "dreamqueue_engine_restarts_total", cause="hung") == 0
    assert value(families["dreamqueue_discord_gateway_connected"], "dreamqueue_discord_gateway_connected") == 1
    assert value(families["dreamqueue_discord_gateway_events"], "dreamqueue_discord_gateway_events_total",
                 event="connect") == 1  # fmt: skip
    edits = families["dreamqueue_discord_request_duration_seconds"]
    assert value(edits, "dreamqueue_discord_request_duration_seconds_count", method="PATCH",
                 route="/webhooks/{id}/{token}/messages/@original", status="200") >= 1  # fmt: skip
    assert value(families["dreamqueue_images_withheld"], "dreamqueue_images_withheld_total") == 0

    assert await get(app, "/healthz") == (200, '{"alive": true}')
    assert await get(app, "/readyz") == (200, '{"ready": true, "failing": {}}')


async def test_refusals_flags_reviews_rate_limits_and_reconnects_are_counted(world: World) -> None:
    app = await world.start(metrics={"port": 0}, moderation={"flags": {"alert_score": 1, "hide_score": 5}})
    world.fake.fail_next("PATCH /webhooks/{application_id}/{token}/messages/{message_id}", status=429)
    result = await world.result(await world.dream(world.alice, prompt="a beach", count=1))
    await (await world.dream(world.alice, prompt="a N.U.D.E portrait")).wait_message(lambda m: m.ephemeral)
    await (await world.dream(world.alice, prompt="a cat", count=6)).wait_message(lambda m: m.ephemeral)
    await flag(world, world.bob, result, reason="violence")
    alert = await world.fake.wait_message(channel=world.mods)
    click = await world.fake.click(world.moderator, alert, label="Dismiss")
    await click.wait_message(lambda m: m.ephemeral)
    resumed = asyncio.ensure_future(app.bot.wait_for("resumed"))
    await world.fake.disconnect()
    await resumed

    families = await scrape(app)
    assert value(families["dreamqueue_discord_rate_limited"], "dreamqueue_discord_rate_limited_total",
                 scope="user") == 1  # fmt: skip
    assert value(families["dreamqueue_prompts_blocked"], "dreamqueue_prompts_blocked_total", category="sexual") == 1
    assert value(families["dreamqueue_prompts_blocked"], "dreamqueue_prompts_blocked_total", category="hate") == 0
    refusals = families["dreamqueue_quota_refusals"]
    assert value(refusals, "dreamqueue_quota_refusals_total", reason="over_tier_limit") == 1
    assert value(refusals, "dreamqueue_quota_refusals_total", reason="daily") == 0
    assert value(families["dreamqueue_flags"], "dreamqueue_flags_total", reason="violence") == 1
    assert value(families["dreamqueue_review_actions"], "dreamqueue_review_actions_total", action="dismiss") == 1
    gateway = families["dreamqueue_discord_gateway_events"]
    assert value(gateway, "dreamqueue_discord_gateway_events_total", event="disconnect") == 1
    assert value(gateway, "dreamqueue_discord_gateway_events_total", event="resumed") == 1
    assert await get(app, "/readyz") == (200, '{"ready": true, "failing": {}}')


async def test_readyz_names_what_is_not_ready(world: World) -> None:
    app = await world.start(metrics={"port": 0})
    await app.engine.close()
    status, body = await get(app, "/readyz")
    assert status == 503 and '"engine"' in body and '"database"' not in body and '"gateway"' not in body
    assert await get(app, "/healthz") == (200, '{"alive": true}')


async def test_a_closed_database_and_a_bot_never_connected_are_not_ready(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "dreamqueue.db")
    await db.close()
    engine = SimulatedEngine()
    await engine.start()
    failing = await Readiness(engine, db, DiscordMetrics(CollectorRegistry())).failures()
    assert sorted(failing) == ["database", "gateway"]


async def test_no_port_serves_nothing(world: World) -> None:
    app = await world.start()
    assert app.monitoring.port is None


async def test_admin_stats_names_the_engine_figures_and_shows_the_metrics_numbers(world: World) -> None:
    app = await world.start(metrics={"port": 0})
    await world.result(await world.dream(world.alice, prompt="a lighthouse", count=1))
    ix = await world.fake.slash(world.admin, world.dreams, "admin", "stats")
    shown = await ix.wait_message(lambda m: m.ephemeral)
    fields = {field["name"]: field["value"] for field in shown.embeds[0]["fields"]}

    device = value((await scrape(app))["dreamqueue_engine_busy_seconds"], "dreamqueue_engine_busy_seconds_total")
    stats = app.services.dreams.stats(world.guild.id)  # nothing has waited since: the same time base as the command's
    device_share, batch_share = device / stats.backlog_seconds, stats.busy_seconds / stats.backlog_seconds
    assert fields["Device busy"] == f"{device_share:.0%} of the time work waited (the engine's own timing)"
    assert fields["Engine batch time"] == f"{batch_share:.0%} of the time work waited (wall clock)"
    assert "GPU duty cycle" not in fields
