"""Discord's edges: dying interaction tokens, deleted messages and channels, restarts, bugs."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import aiosqlite
import pytest

from bot.app import App
from bot.delivery import Delivery
from tests.e2e.conftest import World, has_text, shows_progress


async def test_a_result_older_than_14_minutes_is_posted_in_the_channel_mentioning_the_member(world: World) -> None:
    await world.start()
    old = datetime.timedelta(minutes=14, seconds=30)  # the token has 30 s left
    ix = await world.fake.slash(world.alice, world.dreams, "dream", prompt="a slow snail", count=1, steps=4, age=old)
    result = await world.fake.wait_message(
        lambda m: bool(m.attachments) and m.interaction_id is None, channel=world.dreams
    )
    assert result.content == f"<@{world.alice.id}> your dream is ready."
    assert result.mentions.users == {world.alice.id} and not result.mentions.everyone and not result.mentions.roles
    pointer = await ix.wait_message(has_text("Finished: https://discord.com/channels/"), include_channel=False)
    assert str(result.id) in pointer.content


async def test_a_deleted_reply_falls_back_to_a_channel_message(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.1})
    ix = await world.dream(world.alice, prompt="a comet", count=1, steps=10)
    status = await ix.wait_message(has_text("Queued"))
    await world.fake.delete_message(status)
    result = await world.fake.wait_message(lambda m: bool(m.attachments), channel=world.dreams)
    assert result.interaction_id is None and result.mentions.users == {world.alice.id}


async def test_a_deleted_channel_at_delivery_crashes_nothing_and_marks_the_job_undeliverable(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app = await world.start(engine={"simulated_seconds_per_step": 0.1}, discord={"dream_channel_ids": []})
    ix = await world.dream(world.alice, world.lounge, prompt="a lost letter", count=1, steps=10)
    await ix.wait_message(has_text("Queued"))
    await world.fake.delete_channel(world.lounge)
    other = await world.dream(world.bob, prompt="still working", count=1, steps=2)
    await world.result(other)
    job_id = 1
    view = await app.services.dreams.job(world.guild.id, job_id)
    assert view.state == "done" and view.result_message_id is None
    assert view.undeliverable is not None and "deleted" in view.undeliverable
    assert any("the result cannot be delivered" in r.getMessage() for r in caplog.records)
    app = await world.restart()
    assert await app.services.dreams.undelivered() == []  # the restart does not try it again
    assert (await app.services.dreams.job(world.guild.id, job_id)).undeliverable == view.undeliverable


async def test_jobs_queued_at_shutdown_are_delivered_after_the_restart(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 1.0}, discord={"shutdown": "cancel"})
    running = await world.dream(world.alice, prompt="interrupted", count=1, steps=20)
    queued = await world.dream(world.bob, prompt="waiting", count=1, steps=2)
    await queued.wait_message(has_text("Queued: #1 of"))
    await running.wait_message(shows_progress)  # started: a job only picked is re-queued without a notice
    await world.restart(engine={"simulated_seconds_per_step": 0.01})
    notice = await world.fake.wait_message(
        has_text("was interrupted by a restart and is back in the queue"), channel=world.dreams
    )
    assert notice.mentions.users == {world.alice.id}
    for member, prompt, reply in ((world.alice, "interrupted", running), (world.bob, "waiting", queued)):
        result = await world.fake.wait_message(
            lambda m, p=prompt: bool(m.attachments) and bool(m.embeds) and m.embeds[0]["description"] == p,
            channel=world.dreams,
        )
        assert result.mentions.users == {member.id}
        # The command's reply, which showed the job before the restart, now leads to the result.
        await world.fake.wait_until(lambda r=reply, m=result: r.original_message.content.startswith("Finished: ")
                                    and r.original_message.content.endswith(f"/{m.id}"))  # fmt: skip
    assert not running.original_message.attachments  # the old interaction's token is not used after a restart


async def test_jobs_that_finish_while_the_restarted_bot_connects_are_posted_once(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 1.0}, discord={"shutdown": "cancel"})
    running = await world.dream(world.alice, prompt="first", count=1, steps=20)
    queued = [await world.dream(who, prompt=f"then {who.name}", count=1, steps=2) for who in (world.bob, world.carol)]
    await queued[-1].wait_message(has_text("Queued: #2 of"))
    await running.wait_message(shows_progress)
    # A fast engine: the recovered jobs finish while the new bot is still connecting, so their results are
    # both in the journal (done, not posted) and in the events waiting for the bot.
    await world.restart(engine={"simulated_seconds_per_step": 0.001})
    for prompt in ("first", "then bob", "then carol"):
        await world.fake.wait_message(
            lambda m, p=prompt: bool(m.attachments) and m.embeds[0]["description"] == p, channel=world.dreams
        )
    await world.app.bot.delivery.drain(10)
    grids = [m.embeds[0]["description"] for m in world.fake.channel_messages(world.dreams) if m.attachments]
    assert sorted(grids) == ["first", "then bob", "then carol"]


async def test_a_job_given_up_at_a_start_that_died_before_connecting_is_reported_at_the_next(world: World) -> None:
    config = {"engine": {"simulated_seconds_per_step": 1.0}, "scheduler": {"requeue_on_failure": 0},
              "discord": {"shutdown": "cancel"}}  # fmt: skip
    await world.start(**config)
    running = await world.dream(world.alice, prompt="given up", count=1, steps=20)
    await running.wait_message(shows_progress)
    await world.stop()
    # A start that journals the job interrupted (given up: no retries left), then dies before it connects.
    doomed = await App.open(world.write_config(**config), config_path=world.config_path)
    await doomed.close()
    await world.start()
    notice = await world.fake.wait_message(has_text("your job #1 ended"), channel=world.dreams)
    assert notice.mentions.users == {world.alice.id} and "Interrupted by a restart" in str(notice.embeds[0])
    assert "Interrupted by a restart" in str(running.original_message.embeds[0])  # edited before the notice
    await world.restart()  # told once: not again after this restart
    await world.app.bot.delivery.drain(10)
    told = [m for m in world.fake.channel_messages(world.dreams) if "your job #1 ended" in m.content]
    assert len(told) == 1


async def test_a_result_posted_but_not_recorded_before_a_crash_is_not_posted_twice(world: World) -> None:
    await world.start()
    result = await world.result(await world.dream(world.alice, prompt="only once", count=1))
    await world.stop()
    # What a crash between posting the grid and recording it leaves in the journal.
    async with aiosqlite.connect(world.db_path) as db:
        await db.execute("UPDATE jobs SET result_message_id = NULL, delivered_at = NULL WHERE id = 1")
        await db.commit()
    app = await world.start()
    async with asyncio.timeout(20):
        while (await app.services.dreams.job(world.guild.id, 1)).result_message_id is None:
            await asyncio.sleep(0.05)
    assert (await app.services.dreams.job(world.guild.id, 1)).result_message_id == result.id
    grids = [m for m in world.fake.channel_messages(world.dreams) if m.attachments]
    assert [m.id for m in grids] == [result.id]


async def test_an_unexpected_error_gives_an_error_id_and_logs_the_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app = await world.start()

    def broken(guild_id: int, member: object) -> object:
        raise RuntimeError("database on fire")

    app.services.dreams.quota_status = broken  # type: ignore[method-assign]
    ix = await world.fake.slash(world.alice, world.dreams, "quota")
    message = await ix.wait_message(lambda m: m.ephemeral)
    assert "Something went wrong on our side (error id `" in message.content
    error_id = message.content.split("`")[1]
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error_id in record.getMessage() and "database on fire" in caplog.text
    caplog.clear()  # expected: keep the no-unexpected-errors guard quiet


async def stop_during_admission(world: World, *, admitted: bool) -> Any:
    """Send a ``/dream`` whose admission the bot never finishes (``admitted``: it stops just after the journal
    write), as a bot killed in between would leave it; return the interaction once the bot is stopped."""
    app = world.app
    assert app is not None
    submit, reached, stuck = app.services.dream, asyncio.Event(), []

    async def never_finishes(request: Any, **options: Any) -> Any:
        if admitted:
            await submit(request, **options)
        stuck.append(asyncio.current_task())
        reached.set()
        await asyncio.Event().wait()

    app.services.dream = never_finishes
    ix = await world.dream(world.alice, prompt="caught by a restart", count=1)
    await reached.wait()
    await world.stop()
    stuck[0].cancel()  # what a kill leaves: no code of that run answers it
    return ix


async def test_a_request_caught_by_a_restart_before_its_job_was_admitted_is_answered_at_the_next_start(
    world: World,
) -> None:
    await world.start()
    ix = await stop_during_admission(world, admitted=False)
    app = await world.start()
    told = await ix.wait_message(has_text("restarted before this request was queued"), include_channel=False)
    assert "Nothing was charged" in told.content and not told.ephemeral
    assert await app.services.dreams.job_by_key(world.guild.id, str(ix.id)) is None


async def test_a_placeholder_a_start_read_but_did_not_answer_before_it_stopped_is_answered_by_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.start()
    ix = await stop_during_admission(world, admitted=False)
    reading = asyncio.Event()

    async def stopped_before_answering(self: Delivery, left: Any) -> None:
        reading.set()
        await asyncio.Event().wait()

    with monkeypatch.context() as patch:
        patch.setattr(Delivery, "_answer_left", stopped_before_answering)
        await world.start()
        await reading.wait()
        await world.stop()
    await world.start()
    await ix.wait_message(has_text("restarted before this request was queued"), include_channel=False)


async def test_a_request_caught_by_a_restart_after_its_job_was_admitted_says_so_and_is_delivered(
    world: World,
) -> None:
    await world.start()
    ix = await stop_during_admission(world, admitted=True)
    await world.start()
    await ix.wait_message(has_text("Job #1 is safe in the queue"), include_channel=False)
    grid = await world.fake.wait_message(
        lambda m: bool(m.attachments) and m.embeds[0]["description"] == "caught by a restart", channel=world.dreams
    )
    assert grid.mentions.users == {world.alice.id}
