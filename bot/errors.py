"""The one place errors become replies: member-safe errors ephemerally, anything else with an error id.

The services raise typed errors whose text is safe to show (the scheduler's
:class:`~bot.scheduler.errors.DreamError`, the engine's
:class:`~engine.types.RequestError`, the flag store's, this layer's
:class:`~bot.refusal.Refusal`, the warning store's). Anything
else is a bug: it is logged with its traceback under a short id, and the member
gets that id to quote to the admins.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.access import check_served
from bot.refusal import Refusal
from bot.replies import whisper
from bot.scheduler.errors import DreamError
from engine.types import RequestError
from moderation.flags import FlagError, ReviewError
from moderation.warnings import WarningError

log = logging.getLogger(__name__)


MEMBER_SAFE: tuple[type[BaseException], ...] = (
    Refusal,
    DreamError,
    RequestError,
    FlagError,
    ReviewError,
    WarningError,
    app_commands.CheckFailure,
)
"""Errors whose text is written for members."""


def member_text(error: BaseException) -> str | None:
    """The reply for a member-safe error, or None for a bug."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    elif isinstance(error, app_commands.TransformerError):
        return f"{error.value!r} is not a valid {error.type.name} here."
    if isinstance(error, RequestError):
        return f"**{error.field}**: {error.message}"
    if isinstance(error, MEMBER_SAFE):
        return str(error)
    return None


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, privately; log bugs with a traceback and an error id."""
    text = member_text(error)
    if text is None:
        error_id = secrets.token_hex(4)
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        log.error(
            "error %s in interaction %s (%s) by %s",
            error_id,
            interaction.id,
            _describe(interaction),
            interaction.user.id,
            exc_info=(type(original), original, original.__traceback__),
        )
        text = (
            f"⚠️ Something went wrong on our side (error id `{error_id}`). "
            "Please try again; if it keeps happening, tell an admin the error id."
        )
    if interaction.type is discord.InteractionType.autocomplete:
        return  # suggestions cannot carry a message; the member just sees none
    try:
        await whisper(interaction, text)
    except discord.HTTPException as exc:  # the token expired or the channel went away: nobody to tell
        log.warning("could not tell %s about an error: %s", interaction.user.id, exc)


def _describe(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data = interaction.data or {}
    return str(data.get("custom_id") or data.get("name") or interaction.type.name)


class Guarded:
    """Mixin for dynamic items: in a served server only, run the item's :meth:`run`, reporting errors as a
    command's are.

    discord.py would only log them, and the member would see "This interaction failed".
    """

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            check_served(interaction)
            await self.run(interaction)
        except Exception as exc:  # every failure gets an answer, never "This interaction failed"
            await report(interaction, exc)

    async def run(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


def install(tree: app_commands.CommandTree) -> None:
    """Route every application command error through :func:`report`."""

    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report(interaction, error)

    tree.on_error = on_error  # type: ignore[method-assign]
