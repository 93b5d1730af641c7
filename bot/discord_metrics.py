"""Discord figures: REST request times and 429s, gateway connects, disconnects and resumes, heartbeat latency.

Requests are timed by an aiohttp trace on discord.py's own HTTP session (the
client's ``http_trace``), which also sees the 429s that discord.py waits out and
retries without telling the bot. Gateway events come from the client's
``on_connect``, ``on_disconnect`` and ``on_resumed``. Nothing here imports discord
at run time, so :mod:`bot.metrics` stays importable from the core.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from discord.ext import commands

REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds: Discord usually answers within a tenth of a second; an upload can take seconds."""
RATE_LIMIT_SCOPES = ("user", "global", "shared")
"""Discord's ``X-RateLimit-Scope`` values: the bot's own limit, its global limit, a resource's shared limit."""
GATEWAY_EVENTS = ("connect", "disconnect", "resumed")
_API_PREFIX = re.compile(r"^/api(/v\d+)?(?=/)")
_TOKEN_AFTER = ("webhooks", "interactions")


def route_of(path: str) -> str:
    """The API route of a request path, ids and tokens replaced: ``/api/v10/channels/1/messages`` gives
    ``/channels/{id}/messages``. Anything outside the API (attachment downloads) is ``other``, so that file
    names never become label values."""
    api = _API_PREFIX.match(path)
    if api is None:
        return "other"
    parts = path[api.end() :].strip("/").split("/")
    route: list[str] = []
    for i, part in enumerate(parts):
        if part.isdigit():
            route.append("{id}")
        elif i >= 2 and parts[i - 2] in _TOKEN_AFTER and route[-1] == "{id}":
            route.append("{token}")  # an interaction's or webhook's secret
        else:
            route.append(part)
    return "/" + "/".join(route)


class DiscordMetrics(Collector):
    """The Discord metrics of one app; :meth:`trace_config` goes to the client, then :meth:`watch` it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Histogram(
            "dreamqueue_discord_request_duration_seconds", "Seconds Discord's REST API took to answer a request",
            ["method", "route", "status"], buckets=REQUEST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "dreamqueue_discord_rate_limited", "429 answers from Discord (discord.py waits and retries them)",
            ["scope"], registry=registry,
        )  # fmt: skip
        self.gateway = Counter("dreamqueue_discord_gateway_events", "Gateway sessions started (connect), lost "
                               "(disconnect) and resumed", ["event"], registry=registry)  # fmt: skip
        for scope in RATE_LIMIT_SCOPES:
            self.rate_limited.labels(scope)
        for event in GATEWAY_EVENTS:
            self.gateway.labels(event)
        self._client: commands.Bot | None = None
        self._connected = False
        registry.register(self)

    def trace_config(self) -> aiohttp.TraceConfig:
        """The trace to pass as the client's ``http_trace``: it times every request and counts 429s."""
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._request_started)
        trace.on_request_end.append(self._request_ended)
        trace.on_request_exception.append(self._request_failed)
        return trace

    def watch(self, client: commands.Bot) -> None:
        """Count ``client``'s gateway connects, disconnects and resumes, and read its latency at scrape time."""
        self._client = client
        client.add_listener(self._on_connect, "on_connect")
        client.add_listener(self._on_resumed, "on_resumed")
        client.add_listener(self._on_disconnect, "on_disconnect")

    @property
    def gateway_connected(self) -> bool:
        """Whether the client is ready and its gateway connection is up."""
        client = self._client
        return self._connected and client is not None and client.is_ready() and not client.is_closed()

    async def _on_connect(self) -> None:
        self._connected = True
        self.gateway.labels("connect").inc()

    async def _on_resumed(self) -> None:
        self._connected = True
        self.gateway.labels("resumed").inc()

    async def _on_disconnect(self) -> None:
        self._connected = False
        self.gateway.labels("disconnect").inc()

    async def _request_started(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        context.started = asyncio.get_running_loop().time()

    async def _request_ended(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        status = params.response.status
        self._observe(context, params.method, params.url.path, str(status))
        if status == 429:
            self.rate_limited.labels(params.response.headers.get("X-RateLimit-Scope", "unknown")).inc()

    async def _request_failed(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        self._observe(context, params.method, params.url.path, "error")

    def _observe(self, context: SimpleNamespace, method: str, path: str, status: str) -> None:
        seconds = asyncio.get_running_loop().time() - context.started
        self.requests.labels(method, route_of(path), status).observe(seconds)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("dreamqueue_discord_gateway_latency_seconds", ""),
                GaugeMetricFamily("dreamqueue_discord_gateway_connected", "")]  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        latency = math.nan if self._client is None else self._client.latency
        yield GaugeMetricFamily(
            "dreamqueue_discord_gateway_latency_seconds", "Time between the last gateway heartbeat and its "
            "acknowledgement (NaN until the first)", value=latency if math.isfinite(latency) else math.nan,
        )  # fmt: skip
        yield GaugeMetricFamily("dreamqueue_discord_gateway_connected", "1 while the bot is connected and ready",
                                value=float(self.gateway_connected))  # fmt: skip
