"""The controls of one image: *Vary (subtle)*, *Vary (strong)*, *Upscale 2×* and *Remix*, as dynamic items.

The job id and the image's index live in the custom id (``dq:<action>:<job>:<index>``), so the buttons work
after a restart. They sit under the image posted alone by 🔍, and directly under a one-image grid. Each click
is the clicker's job, charged to them (like a re-roll); its grid answers the message clicked.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.access import check_served, member_of
from bot.errors import Guarded, report
from bot.prompt_tokens import fit_prompt
from bot.refusal import Refusal
from bot.screening import is_nsfw
from bot.server import server_id
from bot.variations import Control, Variations

MAX_TEXT_INPUT = 4000
"""Discord's longest text input."""


class ImageControl(Guarded):
    """A button about one image of a job: ``dq:<action>:<job id>:<index>``; a click submits its ``control``."""

    action: str
    label: str
    emoji: str
    control: Control

    def __init__(self, job_id: int, index: int) -> None:
        super().__init__(  # type: ignore[call-arg]
            discord.ui.Button(label=self.label, emoji=self.emoji, custom_id=f"dq:{self.action}:{job_id}:{index}")
        )
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> ImageControl:
        return cls(int(match["job"]), int(match["index"]))

    async def run(self, interaction: discord.Interaction) -> None:
        await submit(interaction, self.job_id, self.index, self.control)


async def submit(interaction: discord.Interaction, job_id: int, index: int, control: Control, *,
                 strength: float | None = None, prompt: str | None = None,
                 negative: str | None = None) -> None:  # fmt: skip
    """Defer publicly, submit the control's job as the clicker's, and show it as ``/dream`` does."""
    bot: Any = interaction.client
    guild_id = server_id(interaction)
    prompt, cut = (None, "") if prompt is None else fit_prompt(prompt, bot.services.settings.discord)
    async with bot.delivery.admitting(interaction):
        admission, source = await Variations(bot.services).make(
            guild_id, job_id, index, control, member_of(interaction.user), str(interaction.id),
            age_restricted=is_nsfw(interaction.channel), strength=strength, prompt=prompt, negative=negative,
        )
        what = control.label if prompt is None else "Remix"
        note = f"{what} of image {index + 1} of job #{source.number}. {cut}".strip()
        bot.delivery.queued(interaction, admission, note)


class VarySubtleButton(ImageControl, discord.ui.DynamicItem[discord.ui.Button],
                       template=r"dq:vary_subtle:(?P<job>\d+):(?P<index>\d)"):  # fmt: skip
    """New seeds from this image at the server's subtle strength: the same picture, details changed."""

    action, label, emoji = "vary_subtle", Control.VARY_SUBTLE.label, "🌱"
    control = Control.VARY_SUBTLE


class VaryStrongButton(ImageControl, discord.ui.DynamicItem[discord.ui.Button],
                       template=r"dq:vary_strong:(?P<job>\d+):(?P<index>\d)"):  # fmt: skip
    """New seeds from this image at the server's strong strength: its layout and colours, redrawn."""

    action, label, emoji = "vary_strong", Control.VARY_STRONG.label, "🌪️"
    control = Control.VARY_STRONG


class UpscaleButton(ImageControl, discord.ui.DynamicItem[discord.ui.Button],
                    template=r"dq:upscale:(?P<job>\d+):(?P<index>\d)"):  # fmt: skip
    """This image at twice the size, refined at the server's upscale strength."""

    action, label, emoji = "upscale", Control.UPSCALE.label, "⬆️"
    control = Control.UPSCALE


class RemixButton(ImageControl, discord.ui.DynamicItem[discord.ui.Button],
                  template=r"dq:remix:(?P<job>\d+):(?P<index>\d)"):  # fmt: skip
    """Opens :class:`RemixForm`: the prompt to edit, then a strong variation of this image with it."""

    action, label, emoji = "remix", "Remix", "✏️"

    async def run(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        guild_id = server_id(interaction)
        job = await bot.services.dreams.job(guild_id, self.job_id)
        strength = bot.services.server_settings(guild_id).vary_strong_strength
        form = RemixForm(self.job_id, self.index, job.prompt, job.negative_prompt, strength,
                         bot.services.engine.limits.max_prompt_chars)  # fmt: skip
        await interaction.response.send_modal(form)


class RemixForm(discord.ui.Modal, title="Remix this image"):
    """The prompt and negative prompt, pre-filled, and the strength; submitted as a variation of the image."""

    def __init__(self, job_id: int, index: int, prompt: str, negative: str, strength: float, max_chars: int) -> None:
        super().__init__(timeout=15 * 60)
        self.job_id, self.index = job_id, index
        longest = min(max_chars, MAX_TEXT_INPUT)
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, default=prompt[:longest] or None, max_length=longest)
        self.negative: discord.ui.TextInput[Any] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, default=negative[:longest] or None, max_length=longest, required=False)
        self.strength: discord.ui.TextInput[Any] = discord.ui.TextInput(default=f"{strength:g}", max_length=6)
        self.add_item(discord.ui.Label(text="Prompt", component=self.prompt))
        self.add_item(discord.ui.Label(text="Negative prompt (optional)", component=self.negative))
        self.add_item(discord.ui.Label(text="Strength: how far from the image (0-1)", component=self.strength))

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        check_served(interaction)
        return True

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            strength = float(self.strength.value)
        except ValueError:
            raise Refusal(f"**strength**: must be a number above 0 and at most 1, "
                          f"got {self.strength.value!r}.") from None
        await submit(interaction, self.job_id, self.index, Control.VARY_STRONG, strength=strength,
                     prompt=self.prompt.value, negative=self.negative.value)  # fmt: skip

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report(interaction, error)


CONTROLS: tuple[type[ImageControl], ...] = (VarySubtleButton, VaryStrongButton, UpscaleButton, RemixButton)
"""Every control of an image, in the order shown; each is a dynamic item to register."""


def control_items(job_id: int, index: int, row: int) -> list[discord.ui.Item[Any]]:
    """The controls of image ``index`` of the job, on one row of a view."""
    items = [control(job_id, index) for control in CONTROLS]
    for item in items:
        item.item.row = row  # type: ignore[attr-defined]
    return items  # type: ignore[return-value]


def control_view(job_id: int, index: int) -> discord.ui.View:
    """A view of the controls of one image (under the image posted alone)."""
    view = discord.ui.View(timeout=None)
    for item in control_items(job_id, index, 0):
        view.add_item(item)
    return view
