"""Starting and stopping: the token check, a clean stop on SIGTERM, bad Discord settings named by path."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import App, run_bot, serve
from bot.settings import ConfigError, parse_settings
from tests.e2e.conftest import World, shows_progress


def test_without_a_token_it_says_how_to_get_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bot(parse_settings({}, env={})) == 2
    err = capsys.readouterr().err
    assert "set the DISCORD_TOKEN environment variable" in err and "discord.com/developers/applications" in err


def test_with_a_token_but_no_network_it_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nothing listens on: connections are refused, as with no network
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    config = {"engine": {"simulated": True}, "database": {"path": str(tmp_path / "dq.db")}}
    assert run_bot(parse_settings(config, env={"DISCORD_TOKEN": "a-token"})) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dreamqueue: cannot reach Discord (") and "check this machine's network" in line


def test_bad_discord_settings_are_named_by_their_path() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"discord": {"late_result_after_s": 900, "long_prompt": "shorten"}}, env={})
    text = str(error.value)
    assert "discord.late_result_after_s: Input should be less than or equal to 870" in text
    assert "discord.long_prompt: Input should be 'refuse' or 'truncate'" in text


async def test_sigterm_finishes_the_running_job_then_stops_cleanly(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = world.write_config(engine={"simulated_seconds_per_step": 0.1})
    opened: asyncio.Future[App] = asyncio.get_running_loop().create_future()
    open_app = App.open

    async def open_and_tell(*args: Any, **kwargs: Any) -> App:
        app = await open_app(*args, **kwargs)
        opened.set_result(app)
        return app

    monkeypatch.setattr(App, "open", open_and_tell)
    # serve() logs in and connects itself, as in production
    server = asyncio.create_task(serve(settings, world.fake.token, world.config_path))
    try:
        app = await asyncio.wait_for(opened, 30)
        await asyncio.wait_for(app.bot.wait_until_ready(), 30)  # connected, with the guild
        ix = await world.dream(world.alice, prompt="a last one", count=1, steps=20)
        await ix.wait_message(shows_progress)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(asyncio.shield(server), 20)
        result = await world.result(ix, timeout=1)  # posted before the bot disconnected
        assert result.attachments
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
