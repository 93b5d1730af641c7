"""Many interactions against the simulated engine: fairness, and answers that never wait for the engine.

Discord drops an interaction not answered within 3 seconds. Rather than time
answers (which would test the machine's speed), these tests hold the engine
and check that every interaction is answered while it is held; the e2e
fixtures' slow-callback probe checks that nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio

from engine.simulated import SimulatedEngine
from tests.e2e.conftest import World, shows_progress


class Gate:
    """A simulated engine's clock that lets the first step through and holds every later one until :meth:`open`."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._steps = 0

    def open(self) -> None:
        self._open.set()

    async def sleep(self, seconds: float) -> None:
        self._steps += 1
        if self._steps > 1:
            await self._open.wait()


def result_time(ix) -> float:
    """When the grid reached the member (fake clock)."""
    return next(e.at for e in ix.events if e.message is not None and e.message.attachments)


async def test_a_flood_by_one_member_does_not_starve_another(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.02, "max_batch_images": 8})
    flood = [await world.dream(world.carol, prompt=f"flood {n}", count=4) for n in range(12)]
    await world.result(flood[0])
    newcomer = await world.dream(world.bob, prompt="just one", count=4)
    for ix in [*flood, newcomer]:
        await world.result(ix, timeout=60)
    behind = sum(result_time(ix) > result_time(newcomer) for ix in flood)
    # Fair sharing: bob waits about one batch (2 of carol's jobs), not for the 10 or so still queued.
    assert behind >= 7, f"only {behind} of carol's 12 jobs finished after bob's"


async def test_every_interaction_is_answered_while_the_engine_is_busy(world: World) -> None:
    gate = Gate()
    engine = SimulatedEngine.from_settings(world.write_config().engine, sleep=gate.sleep)
    await world.start(engine_client=engine, discord={"shutdown": "cancel"})
    busy = await world.dream(world.carol, prompt="a long one", count=9, steps=20)
    status = await busy.wait_message(shows_progress)
    fake, people = world.fake, [world.alice, world.bob, world.moderator, world.admin]
    interactions = [await world.dream(who, prompt=f"hello from {who.name}", count=1) for who in people]
    interactions += [await fake.slash(who, world.dreams, "queue") for who in people]
    interactions += [await fake.slash(who, world.dreams, "quota") for who in people]
    interactions += [await fake.click(who, status, label="Cancel") for who in people[:2]]
    interactions += [await fake.autocomplete(world.alice, world.dreams, "dream", focused="steps", prompt="x", steps=3)]
    interactions += [await fake.slash(world.moderator, world.dreams, "mod", "review")]
    interactions += [await fake.slash(world.admin, world.dreams, "admin", "stats")]
    for ix in interactions:
        await ix.wait_response()  # the engine is still held at the busy job's first step
    assert engine.health().busy and not any(e.message is not None and e.message.attachments for e in busy.events)
    choices = await interactions[-3].wait_choices()
    assert [c["value"] for c in choices] == [3, 10, 15, 20, 25, 30, 40, 50]
    gate.open()
