"""moderation/ stays free of the Discord layer, the bot package and torch."""

from __future__ import annotations

import subprocess
import sys


def test_moderation_imports_no_bot_discord_or_torch() -> None:
    code = (
        "import sys, moderation, moderation.flags, moderation.prompt_log, moderation.filter;"
        "print(sorted(m for m in ('bot', 'discord', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
