"""Fair scheduling, quotas and the job journal: plain asyncio, no discord import.

- :mod:`.service` -- :class:`~bot.scheduler.service.DreamService`, the one facade the Discord layer calls;
- :mod:`.models`, :mod:`.events`, :mod:`.errors` -- what goes in and out of it;
- :mod:`.config` -- the ``scheduler:`` and ``quotas:`` settings;
- :mod:`.fairqueue` (who runs next), :mod:`.quotas` (GCRA and daily budget), :mod:`.policy` (tiers, overrides,
  bans), :mod:`.journal` (all SQL), :mod:`.clock` (system and virtual time).
"""
