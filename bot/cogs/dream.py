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
from bot.aspect import ASPECTS
from bot.attachments import Bounds, check_size, read_start_image
from bot.dream_options import DEFAULT_MODEL, Asked, Context, resolve
from bot.prompt_tokens import fit_prompt
from bot.refusal import Refusal
from bot.scheduler.models import DreamRequest, EffectiveLimits
from bot.scheduler.modes import MODES
from bot.scheduler.quotas import images_charged
from bot.screening import is_nsfw
from bot.server import server_id
from bot.services import Services, random_seeds
from bot.styles import NO_STYLE
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
            aspect="Width to height, sized for the model (instead of width and height)",
            style="A named style applied to your prompt (none: no style)",
            mode="fast: charged to your quota; relax: free, slower (see /quota)",
            model="The model to draw with",
            image="Your own start image (PNG, JPEG or WebP): the picture is drawn from it",
            strength=f"With an image: how far to move from it, 0-1 (default {image_strength:g}; 1 redraws it all)",
        )
        @app_commands.choices(
            sampler=[app_commands.Choice(name=SAMPLER_LABELS[name], value=name) for name in SAMPLERS],
            aspect=[app_commands.Choice(name=name, value=name) for name in ASPECTS],
            mode=[app_commands.Choice(name=name, value=name) for name in MODES],
        )
        async def dream(
            interaction: discord.Interaction,
            prompt: app_commands.Range[str, 1, limits.max_prompt_chars],
            negative: app_commands.Range[str, 1, limits.max_prompt_chars] | None = None,
            count: app_commands.Range[int, 1, limits.max_images] | None = None,
            steps: app_commands.Range[int, 1, limits.max_steps] | None = None,
            guidance: app_commands.Range[float, 0.0, limits.max_guidance] | None = None,
            seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
            width: app_commands.Range[int, limits.min_size, limits.max_width] | None = None,
            height: app_commands.Range[int, limits.min_size, limits.max_height] | None = None,
            sampler: str | None = None,
            aspect: str | None = None,
            style: str | None = None,
            mode: str | None = None,
            model: str | None = None,
            image: discord.Attachment | None = None,
            strength: app_commands.Range[float, 0.0, 1.0] | None = None,
        ) -> None:
            asked = Asked(prompt, negative, count, steps, guidance, width, height, sampler, aspect, style,
                          mode, model)  # type: ignore[arg-type]  # fmt: skip
            await self.dream(interaction, asked, seed, image, strength)

        for name, suggest in (
            ("count", self._counts), ("steps", self._steps), ("width", self._widths), ("height", self._heights),
            ("style", self._styles), ("model", self._models),
        ):
            dream.autocomplete(name)(suggest)
        return dream

    async def dream(self, interaction: discord.Interaction, asked: Asked, seed: int | None,
                    image: discord.Attachment | None = None, strength: float | None = None) -> None:  # fmt: skip
        """Check the options here (refusals are instant and private), then defer, submit, and show the place."""
        # validate
        guild_id = server_id(interaction)
        guild = interaction.guild
        # The config's channels belong to particular servers: each restricts only its own server.
        allowed = [channel for channel in self.services.server_settings(interaction.guild_id).dream_channel_ids
                   if guild is not None and guild.get_channel(channel) is not None]  # fmt: skip
        if allowed and interaction.channel_id not in allowed:
            channels = ", ".join(f"<#{channel}>" for channel in allowed)
            raise Refusal(f"`/dream` is not used in this channel; try {channels}.")
        member = member_of(interaction.user)
        services = self.services
        tier = services.dreams.quota_status(guild_id, member).limits
        context = Context(services.engine.limits, tier.max_pixels, min(DEFAULT_COUNT, tier.max_images),
                          services.settings.engine.default_sampler)  # fmt: skip
        resolved = resolve(asked, await services.preferences.get(guild_id, member.id),
                           await services.styles.styles(guild_id), context)  # fmt: skip
        prompt, note = self._fit_prompt(resolved.prompt)
        count = resolved.count
        controls = services.settings.controls
        params = replace(resolved.params,
                         strength=(controls.image_strength if image else 1.0) if strength is None else strength)
        seeds = random_seeds(count) if seed is None else tuple((seed + i) % (MAX_SEED + 1) for i in range(count))
        # Discord's client enforces the option ranges, but not multiples of 8, nor what a modified client sends.
        # An attached image is read after the defer (a download can outlast Discord's wait).
        JobRequest("new", prompt, seeds, params, resolved.negative).validate(services.engine.limits,
                                                                             image_to_come=image is not None)
        if image is not None:
            check_size(image.filename, image.size, controls)
        request = DreamRequest(
            member=member,
            guild_id=guild_id,
            prompt=prompt,
            seeds=seeds,
            idempotency_key=str(interaction.id),
            params=params,
            negative_prompt=resolved.negative,
            channel_id=interaction.channel_id,
            mode=resolved.mode,
            style=resolved.style,
        )
        # defer (on record), one service call, render
        async with self.bot.delivery.admitting(interaction):  # type: ignore[attr-defined]
            if image is not None:  # fitted to the size asked for, else to the nearest allowed size of its own shape
                asked_size = None if asked.width is None or asked.height is None else (asked.width, asked.height)
                start = await read_start_image(image, controls, Bounds.of(services.engine.limits, tier.max_pixels),
                                               asked_size)  # fmt: skip
                request = replace(request, params=replace(params, width=start.width, height=start.height),
                                  init_image=start.png, charge=images_charged(count, params.strength))  # fmt: skip
            admission = await services.dream(request, age_restricted=is_nsfw(interaction.channel))
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

    async def _styles(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The config's styles and this server's whose name holds what is typed, and "none"."""
        names = [NO_STYLE, *await self.services.styles.styles(server_id(interaction))]
        return [app_commands.Choice(name=name, value=name) for name in names if current.lower() in name][:25]

    async def _models(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The engine's default model and the configured others (only "default" when there are none)."""
        names = (DEFAULT_MODEL, *self.services.engine.limits.models)
        return [app_commands.Choice(name=name, value=name) for name in names if current.lower() in name.lower()][:25]

async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Dream(bot))
