"""Chaos, the short version of ``bench/chaos.py``: the real bot, in a process of its own, SIGKILLed five times
while members dream, delivers every admitted job exactly once or tells its member why not.

The first three kills are aimed, so that every run meets the hazards a restart has: a job running, the
job running again after the restart (so the next start gives it up), and that start killed as soon as
it connects (before it is ready to post). The last two come after a random number of the bot's actions, so
they land anywhere in its life however fast the machine is. Every wait is for an event or a database state,
bounded only to fail.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.chaos import Plan, run_chaos

log = logging.getLogger("tests.chaos")

SHORT = Plan(
    members=4, guilds=2, kill_at=("running", "rerunning", "connected", (0, 30), (0, 30)), minutes=0,
    engine_crashes=2, rate=2.0, steps=10, seconds_per_step=0.06, bound_s=120.0, log_level="INFO",
)  # fmt: skip
"""Jobs of one or two images at 0.6 s an image: a running job is seen in the journal before it ends."""


async def test_no_job_is_posted_twice_or_lost_when_the_bot_is_killed(tmp_path: Path) -> None:
    tally, errors = await run_chaos(SHORT, tmp_path, say=log.info)
    report = "\n".join(tally.lines())
    log.info("chaos counts:\n%s", report)
    assert tally.admitted > 0, report
    assert not tally.posted_twice, report
    assert tally.lost == 0 and not tally.unfinished and not tally.record_differs, report
    assert not tally.quota_wrong, report
    assert not errors, "\n".join(errors)
