"""The bot's command groups, one cog per module (loaded by ``bot.client.DreamBot``)."""
