"""A real Prometheus scrapes the bot through a short session; every dashboard panel's query then returns series.

Needs the ``prometheus`` binary (Debian: ``apt-get install prometheus``); skipped, saying so, without it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from tests.e2e.conftest import World
from tests.e2e.test_moderation import flag

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dreamqueue.json"
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")
WAIT_S = 120.0
"""Upper bound on waiting for Prometheus to start or scrape: far above what a loaded machine takes."""

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no prometheus binary on PATH (Debian: apt-get install prometheus): the dashboard's queries are not "
    "run against a real Prometheus",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, query)`` for every target of every panel, with Grafana's interval variables as 1m and
    each template variable as its "All" value."""
    variables = {
        v["name"]: v.get("allValue") or ".*" for v in dashboard["templating"]["list"] if v["type"] != "datasource"
    }
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = GRAFANA_INTERVALS.sub("1m", target["expr"])
            for name, value in variables.items():
                expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
            queries.append((panel["title"], expr))
    return queries


class Prometheus:
    """A Prometheus server in a temporary folder, and its query API."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, http: aiohttp.ClientSession) -> None:
        self.process = process
        self.url = url
        self.http = http

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query; fails the test on an error."""
        async with self.http.get(f"{self.url}/api/v1/query", params={"query": expr}) as answer:
            body = await answer.json()
        assert body["status"] == "success", f"{expr}: {body.get('error')}"
        return body["data"]["result"]

    async def wait_for(self, expr: str) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a series (a scrape brought what it asks for)."""
        async with asyncio.timeout(WAIT_S):
            while not (result := await self.query(expr)):
                await asyncio.sleep(0.2)
        return result


@pytest_asyncio.fixture
async def prometheus_for(tmp_path: Path) -> AsyncIterator[Callable[[int], Awaitable[Prometheus]]]:
    """A function starting Prometheus to scrape a port every second; the server is killed at the end."""
    started: list[asyncio.subprocess.Process] = []

    async with aiohttp.ClientSession() as http:

        async def start(target_port: int) -> Prometheus:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "dreamqueue", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
                ],
            }
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), "utf-8")
            port = free_port()
            with (tmp_path / "prometheus.log").open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                    stdout=log, stderr=log,
                )  # fmt: skip
            started.append(process)
            server = Prometheus(process, f"http://127.0.0.1:{port}", http)
            async with asyncio.timeout(WAIT_S):
                while not await _ready(http, server.url):
                    assert process.returncode is None, (tmp_path / "prometheus.log").read_text()
                    await asyncio.sleep(0.2)
            return server

        try:
            yield start
        finally:
            for process in started:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/-/ready") as answer:
            return answer.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def test_every_dashboard_query_returns_series_from_a_real_prometheus(
    world: World, prometheus_for: Callable[[int], Awaitable[Prometheus]], capsys: pytest.CaptureFixture[str]
) -> None:
    app = await world.start(metrics={"port": 0}, moderation={"flags": {"alert_score": 1, "hide_score": 5}})
    assert app.monitoring.port is not None
    prometheus = await prometheus_for(app.monitoring.port)
    await prometheus.wait_for('up{job="dreamqueue"} == 1')

    results = [await world.result(await world.dream(who, prompt="a lighthouse", count=count))
               for who, count in ((world.alice, 1), (world.bob, 2), (world.carol, 3))]  # fmt: skip
    await (await world.dream(world.alice, prompt="a N.U.D.E portrait")).wait_message(lambda m: m.ephemeral)
    await (await world.dream(world.bob, prompt="a cat", count=6)).wait_message(lambda m: m.ephemeral)
    await flag(world, world.bob, results[0], reason="violence")
    alert = await world.fake.wait_message(channel=world.mods)
    await (await world.fake.click(world.moderator, alert, label="Dismiss")).wait_message(lambda m: m.ephemeral)
    await prometheus.wait_for("sum(dreamqueue_images_total) == 6 and sum(dreamqueue_review_actions_total) == 1")
    # rate() needs two samples of a series: the last series born (the last tier's images) is scraped twice.
    await prometheus.wait_for("min(count_over_time(dreamqueue_images_total[1m])) >= 2")

    scraped = await prometheus.query('scrape_samples_scraped{job="dreamqueue"}')
    names = await prometheus.query('count by (__name__) ({job="dreamqueue", __name__=~"dreamqueue_.*"})')
    counts = [(title, expr, len(await prometheus.query(expr)))
              for title, expr in panel_queries(json.loads(DASHBOARD.read_text("utf-8")))]  # fmt: skip
    with capsys.disabled():
        samples = scraped[0]["value"][1]
        print(f"\nPrometheus scraped {samples} samples a scrape, under {len(names)} dreamqueue series names:")
        for series in sorted(names, key=lambda s: s["metric"]["__name__"]):
            print(f"  {series['metric']['__name__']}: {series['value'][1]} series")
        print("dashboard queries (series returned):")
        for title, expr, count in counts:
            print(f"  {count:3d}  {title}: {expr}")
    assert [(title, expr) for title, expr, count in counts if count == 0] == []
