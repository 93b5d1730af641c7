"""``/dream``: a prompt in, a grid of images out.

The option ranges come from the engine's limits in config, so the command is
built when the cog loads (this module keeps its annotations evaluated, which
``app_commands`` reads). Autocomplete suggests what the member's tier allows.
"""

from dataclasses import replace

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import member_of
from bot.attachments import Bounds, check_size, read_start_image
from bot.prompt_tokens import fit_prompt
from bot.refusal import Refusal
from bot.replies import defer
from bot.scheduler.models import DreamRequest, EffectiveLimits
from bot.screening import is_nsfw
from bot.server import server_id
from bot.services import Services, random_seeds
from engine.pnginfo import SAMPLER_LABELS
from engine.types import MAX_SEED, SAMPLERS, GenerationParams, JobRequest, Limits

DEFAULT_COUNT = 4
STEP_SUGGESTIONS = (10, 15, 20, 25, 30, 40, 50, 75, 100, 150)
SIDE_SUGGESTIONS = tuple(range(256, 2049, 64))


class Dream(commands.Cog):
    """The ``/dream`` command."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.services: Services = bot.services  # type: ignore[attr-defined]
        self.command = self._build(self.services.engine.limits)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)

    def _build(self, limits: Limits) -> app_commands.Command:
        default_sampler = self.services.settings.engine.default_sampler
        image_strength = self.services.settings.controls.image_strength

        @app_commands.command(name="dream", description="Turn a prompt into images")
        @app_commands.guild_only()
        @app_commands.describe(
            prompt="What to draw",
            negative="What to keep out of the picture",
            count=f"How many images (1-{limits.max_images}; your tier may allow fewer)",
            steps=f"Denoising steps: more is slower and finer (1-{limits.max_steps})",
            guidance=f"How closely to follow the prompt (0-{limits.max_guidance:g}; 7 is usual)",
            seed=f"Seed of the first image; the others follow it (0-{MAX_SEED})",
            width=f"Width in pixels, a multiple of 8 ({limits.min_size}-{limits.max_width})",
            height=f"Height in pixels, a multiple of 8 ({limits.min_size}-{limits.max_height})",
            sampler=f"The sampler (default: {SAMPLER_LABELS[default_sampler]})",
            image="Your own start image (PNG, JPEG or WebP): the picture is drawn from it",
            strength=f"With an image: how far to move from it, 0-1 (default {image_strength:g}; 1 redraws it all)",
        )
        @app_commands.choices(
            sampler=[app_commands.Choice(name=SAMPLER_LABELS[name], value=name) for name in SAMPLERS]
        )
        async def dream(
            interaction: discord.Interaction,
            prompt: app_commands.Range[str, 1, limits.max_prompt_chars],
            negative: app_commands.Range[str, 1, limits.max_prompt_chars] = "",
            count: app_commands.Range[int, 1, limits.max_images] | None = None,
            steps: app_commands.Range[int, 1, limits.max_steps] | None = None,
            guidance: app_commands.Range[float, 0.0, limits.max_guidance] | None = None,
            seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
            width: app_commands.Range[int, limits.min_size, limits.max_width] | None = None,
            height: app_commands.Range[int, limits.min_size, limits.max_height] | None = None,
            sampler: str | None = None,
            image: discord.Attachment | None = None,
            strength: app_commands.Range[float, 0.0, 1.0] | None = None,
        ) -> None:
            await self.dream(interaction, prompt, negative, count, steps, guidance, seed, width, height, sampler,
                             image, strength)  # fmt: skip

        for name, suggest in (
            ("count", self._counts), ("steps", self._steps), ("width", self._widths), ("height", self._heights)
        ):
            dream.autocomplete(name)(suggest)
        return dream

    async def dream(
        self,
        interaction: discord.Interaction,
        prompt: str,
        negative: str,
        count: int | None,
        steps: int | None,
        guidance: float | None,
        seed: int | None,
        width: int | None,
        height: int | None,
        sampler: str | None,
        image: discord.Attachment | None = None,
        strength: float | None = None,
    ) -> None:
        """Check the options here (refusals are instant and private), then defer, submit, and show the place."""
        # validate
        guild_id = server_id(interaction)
        settings = self.services.settings
        guild = interaction.guild
        # The config's channels belong to particular servers: each restricts only its own server.
        allowed = [channel for channel in self.services.server_settings(interaction.guild_id).dream_channel_ids
                   if guild is not None and guild.get_channel(channel) is not None]  # fmt: skip
        if allowed and interaction.channel_id not in allowed:
            channels = ", ".join(f"<#{channel}>" for channel in allowed)
            raise Refusal(f"`/dream` is not used in this channel; try {channels}.")
        member = member_of(interaction.user)
        if count is None:
            count = min(DEFAULT_COUNT, self.services.dreams.quota_status(guild_id, member).limits.max_images)
        defaults = GenerationParams()
        params = GenerationParams(
            width=defaults.width if width is None else width,
            height=defaults.height if height is None else height,
            steps=defaults.steps if steps is None else steps,
            guidance=defaults.guidance if guidance is None else guidance,
            sampler=settings.engine.default_sampler if sampler is None else sampler,
            strength=(settings.controls.image_strength if image else 1.0) if strength is None else strength,
        )
        prompt, note = self._fit_prompt(prompt)
        seeds = random_seeds(count) if seed is None else tuple((seed + i) % (MAX_SEED + 1) for i in range(count))
        # Discord's client enforces the option ranges, but not multiples of 8, nor what a modified client sends.
        # An attached image is read after the defer (a download can outlast Discord's wait): b"" holds its place.
        JobRequest("new", prompt, seeds, params, negative, b"" if image else None).validate(self.services.engine.limits)
        if image is not None:
            check_size(image.filename, image.size, settings.controls)
        request = DreamRequest(
            member=member,
            guild_id=guild_id,
            prompt=prompt,
            seeds=seeds,
            idempotency_key=str(interaction.id),
            params=params,
            negative_prompt=negative,
            channel_id=interaction.channel_id,
        )
        # defer, one service call, render
        await defer(interaction, public=True)
        async with self.bot.delivery.admitting(interaction):  # type: ignore[attr-defined]
            if image is not None:  # fitted to the size asked for, else to the nearest allowed size of its own shape
                bounds = Bounds.of(self.services.engine.limits,
                                   self.services.dreams.quota_status(guild_id, member).limits.max_pixels)  # fmt: skip
                start = await read_start_image(image, settings.controls, bounds,
                                               None if width is None or height is None else (width, height))  # fmt: skip
                request = replace(request, params=replace(params, width=start.width, height=start.height),
                                  init_image=start.png)  # fmt: skip
            admission = await self.services.dream(request, age_restricted=is_nsfw(interaction.channel))
            self.bot.delivery.queued(interaction, admission, note)  # type: ignore[attr-defined]

    def _fit_prompt(self, prompt: str) -> tuple[str, str]:
        """The prompt within the token limit, and a note when it was cut; refuses instead when so configured."""
        return fit_prompt(prompt, self.services.settings.discord)

    # autocomplete: what the member's tier allows

    def _tier(self, interaction: discord.Interaction) -> EffectiveLimits:
        return self.services.dreams.quota_status(server_id(interaction), member_of(interaction.user)).limits

    async def _counts(self, interaction: discord.Interaction, current: int | None) -> list[app_commands.Choice[int]]:
        tier = self._tier(interaction)
        top = min(tier.max_images, tier.burst, self.services.engine.limits.max_images)
        return [app_commands.Choice(name=f"{n} image{'s' * (n > 1)}", value=n) for n in range(1, top + 1)]

    async def _steps(self, interaction: discord.Interaction, current: int | None) -> list[app_commands.Choice[int]]:
        top = min(self._tier(interaction).max_steps, self.services.engine.limits.max_steps)
        values = sorted({*(s for s in STEP_SUGGESTIONS if s <= top), top})
        if isinstance(current, int) and 1 <= current <= top:
            values = sorted({current, *values})
        return [app_commands.Choice(name=f"{s} steps", value=s) for s in values][:25]

    async def _widths(self, interaction: discord.Interaction, current: int | None) -> list[app_commands.Choice[int]]:
        return self._sides(interaction, interaction.namespace.height)

    async def _heights(self, interaction: discord.Interaction, current: int | None) -> list[app_commands.Choice[int]]:
        return self._sides(interaction, interaction.namespace.width)

    def _sides(self, interaction: discord.Interaction, other: object) -> list[app_commands.Choice[int]]:
        """Sides that, with the other side as typed (or 512), stay within the tier's pixels per image."""
        limits = self.services.engine.limits
        other = other if isinstance(other, int) and other > 0 else GenerationParams().width
        max_pixels = self._tier(interaction).max_pixels
        top = min(limits.max_width, limits.max_height)
        sides = sorted({s for s in (limits.min_size, *SIDE_SUGGESTIONS) if s <= top and s * other <= max_pixels})
        return [app_commands.Choice(name=f"{s} px", value=s) for s in sides][:25]

async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Dream(bot))
