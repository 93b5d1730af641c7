"""Styles: named prompt templates, from the config (every server's) and each server's own (its admins').

A style's ``prompt`` holds ``{prompt}``, where the member's prompt goes; its
``negative`` is added to the member's negative prompt. The style is applied
before the prompt filter runs, so the filter sees what the engine will get. A
server's own styles are rows of ``server_styles``, read when used (a lookup
by key), each change audited in the server's audit log in the same
transaction.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.db import Database
from bot.refusal import Refusal
from moderation.audit import write_audit

PLACEHOLDER = "{prompt}"
NO_STYLE = "none"
"""The style value that asks for no style (over a member's default one)."""
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
NAME_RULE = "1-32 lowercase letters, digits, - or _, starting with a letter or digit"
MAX_TEMPLATE_CHARS = 500
MAX_SERVER_STYLES = 50


def check_template(prompt: str) -> str:
    """The template, or ``ValueError`` if it has no place for the member's prompt."""
    if PLACEHOLDER not in prompt:
        raise ValueError(f"must contain {PLACEHOLDER}, where the member's prompt goes")
    return prompt


class StyleSettings(BaseModel):
    """One style of the config's top-level ``styles:`` mapping (name to style)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    """The template, e.g. ``"{prompt}, oil painting, impasto"``."""
    negative: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    """Added to the member's negative prompt."""

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, prompt: str) -> str:
        return check_template(prompt)


def check_style_names(styles: dict[str, StyleSettings]) -> dict[str, StyleSettings]:
    """The config's styles, or ``ValueError`` naming a bad name."""
    for name in styles:
        if not NAME.match(name) or name == NO_STYLE:
            raise ValueError(f"style name {name!r} must be {NAME_RULE}, and not {NO_STYLE!r}")
    return styles


@dataclass(frozen=True)
class Style:
    """A style as applied: its name, template and negative, and whether it is the server's own."""

    name: str
    prompt: str
    negative: str = ""
    own: bool = False

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        """The member's prompt and negative prompt in this style."""
        styled_negative = ", ".join(part for part in (negative, self.negative) if part)
        return self.prompt.replace(PLACEHOLDER, prompt), styled_negative


class StyleStore:
    """The config's styles and each server's own."""

    def __init__(self, db: Database, config: dict[str, StyleSettings]) -> None:
        self._db = db
        self._config = {name: Style(name, style.prompt, style.negative) for name, style in config.items()}

    async def styles(self, guild_id: int) -> dict[str, Style]:
        """Every style the server's members may use, by name: the config's, then the server's own."""
        async with self._db.conn.execute(
            "SELECT name, prompt, negative FROM server_styles WHERE guild_id = ? ORDER BY name", (guild_id,)
        ) as cursor:
            own = {row["name"]: Style(row["name"], row["prompt"], row["negative"], own=True)
                   for row in await cursor.fetchall()}  # fmt: skip
        return {**self._config, **own}

    async def add(self, guild_id: int, name: str, prompt: str, negative: str, actor_id: int) -> Style:
        """Add a style of the server's own; refuse a bad name or template, or a name already taken."""
        name = name.strip().lower()
        if not NAME.match(name) or name == NO_STYLE:
            raise Refusal(f"**name**: a style's name is {NAME_RULE} (and not `{NO_STYLE}`).")
        try:
            check_template(prompt)
        except ValueError as exc:
            raise Refusal(f"**prompt** {exc}, e.g. `{PLACEHOLDER}, oil painting`.") from None
        for field, text in (("prompt", prompt), ("negative", negative)):
            if len(text) > MAX_TEMPLATE_CHARS:
                raise Refusal(f"**{field}**: at most {MAX_TEMPLATE_CHARS} characters; this has {len(text)}.")
        now = time.time()
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT count(*), coalesce(sum(name = ?), 0) FROM server_styles WHERE guild_id = ?",
                                    (name, guild_id)) as cursor:  # fmt: skip
                own, taken = await cursor.fetchone() or (0, 0)
            if taken or name in self._config:
                raise Refusal(f"**name**: there is already a style `{name}` here.")
            if own >= MAX_SERVER_STYLES:
                raise Refusal(f"This server has {MAX_SERVER_STYLES} styles of its own, the most; remove one first.")
            await conn.execute(
                "INSERT INTO server_styles (guild_id, name, prompt, negative, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, name, prompt, negative, actor_id, now),
            )
            await write_audit(conn, guild_id, now, actor_id, "style_added", None, None,
                              f"{name}: {prompt}" + (f" (negative: {negative})" if negative else ""))  # fmt: skip
        return Style(name, prompt, negative, own=True)

    async def remove(self, guild_id: int, name: str, actor_id: int) -> None:
        """Remove one of the server's own styles; refuse a config style or an unknown name."""
        if name in self._config:
            raise Refusal(f"**name**: `{name}` is one of the config's styles; only the operator can remove it.")
        now = time.time()
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM server_styles WHERE guild_id = ? AND name = ?", (guild_id, name))
            if cursor.rowcount != 1:
                raise Refusal(f"**name**: this server has no style `{name}`.")
            await write_audit(conn, guild_id, now, actor_id, "style_removed", None, None, name)


def unknown_style(name: str, styles: dict[str, Style], field: str = "style") -> Refusal:
    """The refusal of a style that is not one of ``styles``, listing them."""
    known = ", ".join(f"`{style}`" for style in styles) or "none yet"
    return Refusal(f"**{field}**: there is no style `{name}` here; the styles are: {known}.")
