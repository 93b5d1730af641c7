"""Print the application commands exactly as the fake Discord received them from ``tree.sync()``.

    python -m tests.e2e.print_commands > commands.json
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from bot.app import App
from bot.settings import parse_settings
from tests.fakediscord import FakeDiscord


async def main() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Dream Club")
        with tempfile.TemporaryDirectory() as folder:
            config = {
                "database": {"path": str(Path(folder) / "db.sqlite")},
                "engine": {"simulated": True},
                "discord": {"guild_ids": [guild.id]},
            }
            app = await App.open(parse_settings(config, env={}))
            try:
                await fake.start_bot(app.bot)
            finally:
                await app.close()
                await fake.stop_bot()
        for scope, sent in fake.commands.syncs:
            print(json.dumps({"scope": "global" if scope is None else "guild", "commands": sent}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
