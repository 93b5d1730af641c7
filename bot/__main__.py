"""``python -m bot [--config PATH]`` starts the bot, like ``dreamqueue run``."""

import sys

from bot.cli import main

sys.exit(main(["run", *sys.argv[1:]]))
