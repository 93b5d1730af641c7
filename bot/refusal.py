"""The Discord layer's own member-facing refusal (no discord import, so services can raise it too)."""


class Refusal(Exception):
    """A request the bot turns down; the text says what happened and what to do."""
