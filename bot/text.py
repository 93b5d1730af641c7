"""Text helpers for what members read."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut (Discord refuses over-long fields)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
