"""Fair scheduling, quotas and the job journal, keyed by server: plain asyncio, no discord import.

- :mod:`.service` -- :class:`~bot.scheduler.service.DreamService`, the one facade the Discord layer calls;
- :mod:`.models`, :mod:`.events`, :mod:`.errors` -- what goes in and out of it;
- :mod:`.config` -- the ``scheduler:`` and ``quotas:`` settings;
- behind the facade, one module per job: :mod:`.admission`, :mod:`.dispatch`, :mod:`.recovery`,
  :mod:`.estimates`, :mod:`.admin`, sharing :mod:`.core` (the state and the one :class:`~.core.Job` record);
- :mod:`.fairqueue` (who runs next: servers by weight, then members by tier), :mod:`.quotas` (GCRA and daily
  budget), :mod:`.policy` (tiers, overrides, bans, server weights), :mod:`.journal`, :mod:`.admin_tables` and
  :mod:`.rows` (all SQL but a start's reads), :mod:`.clock` (system and virtual time).
"""
