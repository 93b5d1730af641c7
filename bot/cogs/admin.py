"""``/admin``: tier limits, member overrides, the global multiplier, filter rules, pause, reload, stats.

Discord shows the group to Administrators by default; every use is checked
again: a server admin's commands act on that server only, and the commands
marked :data:`OPERATOR` (pause, resume, the multiplier, reload) change what
every server shares, so only the operator may use them. Changes apply to the
next request and are stored (and audited) by the services, so they survive
restarts.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.access import member_of, require_for_command
from bot.cogs.server_settings import ServerSettingsGroup, own_role_id
from bot.refusal import Refusal
from bot.replies import defer, whisper
from bot.scheduler.config import LIMIT_NAMES, limit_range
from bot.server import server_id
from bot.setting_kinds import shown
from bot.text import clip
from moderation.filter import Verdict

LIMIT_CHOICES = [
    app_commands.Choice(name=f"{name} ({low:g} to {high:g})", value=name)
    for name in LIMIT_NAMES
    for low, high in [limit_range(name)]
]
OPERATOR = {"operator": True}
"""``extras`` of the commands only the operator may use: they change what every server shares."""
ROLE_ACTIONS = [app_commands.Choice(name=name, value=name) for name in ("add", "remove")]
RULE_LISTS = [
    app_commands.Choice(name="keyword (AutoMod syntax: word, word*, *word, *word*)", value="keywords"),
    app_commands.Choice(name="regex (RE2, linear-time)", value="regex"),
    app_commands.Choice(name="allow-list entry", value="allow"),
]


def key_list(keys: list[str], shown: int = 12) -> str:
    """Config keys as code, the first ``shown`` of them and a count of the rest."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(f"`{key}`" for key in keys[:shown]) + more


def explained(verdict: Verdict, *, named: bool) -> str:
    """A filter verdict for the admin: allowed, or what it blocks or notes and why, with the match marked;
    ``named``: say whether it is the prompt's or the negative prompt's."""
    part = ("**Negative prompt** (checked for personal information, hate and `negative_categories`): "
            if verdict.part == "negative" else "**Prompt**: ") if named else ""  # fmt: skip
    if verdict.action == "allow":
        return f"{part}✅ Allowed: no rule matches."
    text = verdict.prompt
    start, end = verdict.span or (0, 0)
    marked = f"{text[:start]}**__{text[start:end]}__**{text[end:]}"
    return (f"{part}{'🚫 Blocked' if not verdict.allowed else '🏳️ Allowed but logged for moderators'}: "
            f"category **{verdict.category}**, {verdict.kind} rule `{verdict.rule}`, characters {start}-{end}:\n"
            f"> {clip(marked, 700 if named else 1500)}")  # fmt: skip


def limits_embed(title: str, limits: dict[str, float]) -> discord.Embed:
    embed = discord.Embed(title=title, colour=render.BLURPLE)
    for name, value in limits.items():
        embed.add_field(name=name, value=f"{value:g}")
    return embed


@app_commands.guild_only()
@app_commands.default_permissions(administrator=True)
class Admin(commands.GroupCog, group_name="admin", group_description="Tune quotas, filters and the queue"):
    """Admin commands."""

    tier = app_commands.Group(name="tier", description="Quota tiers")
    override = app_commands.Group(name="override", description="One member's limits")
    filters = app_commands.Group(name="filter", description="The prompt filter")
    settings = ServerSettingsGroup(name="settings", description="This server's own settings")

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.services = bot.services

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        require_for_command(interaction)
        return True

    async def _tiers(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = self.services.settings.quotas.tiers
        return [app_commands.Choice(name=name, value=name) for name in names if current.lower() in name.lower()][:25]

    # tiers

    @tier.command(name="show", description="A tier's limits now")
    async def tier_show(self, interaction: discord.Interaction, tier: str) -> None:
        await defer(interaction)
        limits = self.services.dreams.tier_limits(server_id(interaction), tier)
        await whisper(interaction, embed=limits_embed(f"Tier {tier}", limits))

    @tier.command(name="set", description="Change one limit of a tier (applies to the next request)")
    @app_commands.describe(value="The new value; out-of-range values are refused with the range")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def tier_set(self, interaction: discord.Interaction, tier: str, limit: str, value: float) -> None:
        await defer(interaction)
        limits = await self.services.dreams.set_tier_limit(interaction.user.id, server_id(interaction), tier, limit, value)
        embed = limits_embed(f"Tier {tier}", limits)
        await whisper(interaction, f"Tier **{tier}**: {limit} is now {limits[limit]:g}.", embed=embed)

    @tier.command(name="reset", description="Put one limit of a tier back to its config value")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def tier_reset(self, interaction: discord.Interaction, tier: str, limit: str) -> None:
        await defer(interaction)
        limits = await self.services.dreams.set_tier_limit(interaction.user.id, server_id(interaction), tier, limit, None)
        await whisper(interaction, f"Tier **{tier}**: {limit} is back to {limits[limit]:g}.")

    @tier.command(name="role", description="Make one of this server's roles give a tier here, or stop it")
    @app_commands.describe(role="A role of this server", action="add (default) or remove")
    @app_commands.choices(action=ROLE_ACTIONS)
    async def tier_role(self, interaction: discord.Interaction, tier: str, role: discord.Role,
                        action: str = "add") -> None:  # fmt: skip
        role_id = own_role_id(interaction, role)
        await defer(interaction)
        roles = await self.services.guild_settings.set_tier_role(
            server_id(interaction), tier, role_id, interaction.user.id, add=action == "add"
        )
        done = "now gives" if action == "add" else "no longer gives"
        await whisper(interaction, f"{role.mention} {done} tier **{tier}** here. This server's roles for it: "
                                   f"{shown('roles', roles)}.")  # fmt: skip

    tier_show.autocomplete("tier")(_tiers)
    tier_set.autocomplete("tier")(_tiers)
    tier_reset.autocomplete("tier")(_tiers)
    tier_role.autocomplete("tier")(_tiers)

    # member overrides

    @override.command(name="show", description="A member's limits now: tier, overrides and multiplier applied")
    async def override_show(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await defer(interaction)
        limits = self.services.dreams.quota_status(server_id(interaction), member_of(member)).limits
        shown = {name: getattr(limits, name) for name in LIMIT_NAMES}
        await whisper(interaction, embed=limits_embed(f"{member.display_name} ({limits.tier} tier)", shown))

    @override.command(name="set", description="Give one member their own value of a limit")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def override_set(
        self, interaction: discord.Interaction, member: discord.Member, limit: str, value: float
    ) -> None:
        await defer(interaction)
        overrides = await self.services.dreams.set_member_override(
            interaction.user.id, server_id(interaction), member.id, limit, value
        )
        await whisper(interaction, f"{member.mention}: {limit} is now {overrides[limit]:g} (overrides the tier).")

    @override.command(name="clear", description="Remove a member's own value of a limit")
    @app_commands.choices(limit=LIMIT_CHOICES)
    async def override_clear(self, interaction: discord.Interaction, member: discord.Member, limit: str) -> None:
        await defer(interaction)
        await self.services.dreams.set_member_override(interaction.user.id, server_id(interaction), member.id, limit, None)
        await whisper(interaction, f"{member.mention}: {limit} follows their tier again.")

    @app_commands.command(name="multiplier", description="Scale every tier's burst, rate and daily budget (operator)",
                          extras=OPERATOR)  # fmt: skip
    @app_commands.describe(value="0.01 to 100; 1 is the config's quotas as written")
    async def multiplier(self, interaction: discord.Interaction, value: float) -> None:
        await defer(interaction)
        value = await self.services.dreams.set_multiplier(interaction.user.id, value)
        await whisper(interaction, f"Quotas are now ×{value:g} of the configured tiers.")

    @app_commands.command(name="weight", description="A server's share of the GPU against the others' (operator)",
                          extras=OPERATOR)  # fmt: skip
    @app_commands.describe(value="0.01 to 100; every server has 1 unless set", server="A server's id (default: this one)")
    async def weight(self, interaction: discord.Interaction, value: float, server: str | None = None) -> None:
        await defer(interaction)
        if server is not None and not server.isdigit():
            raise Refusal(f"server: {server!r} is not a server id (Developer Mode → right-click the server → Copy ID)")
        guild_id = int(server) if server else server_id(interaction)
        weight = await self.services.dreams.set_server_weight(interaction.user.id, guild_id, value)
        await whisper(interaction, f"Server {guild_id} now has a GPU share of {weight:g} (others: 1 unless set).")

    # the prompt filter

    @filters.command(name="add", description="Add a rule to a category (a new category blocks)")
    @app_commands.choices(kind=RULE_LISTS)
    async def filter_add(
        self, interaction: discord.Interaction, category: str, rule: str, kind: str = "keywords"
    ) -> None:
        await defer(interaction)
        await self.services.change_filter_rule(
            interaction.guild_id, interaction.user.id, category, rule, add=True, into=kind
        )
        await whisper(interaction, f"Added {kind} rule `{rule}` to **{category}**; it applies to the next prompt.")

    @filters.command(name="remove", description="Remove a rule from a category")
    @app_commands.choices(kind=RULE_LISTS)
    async def filter_remove(
        self, interaction: discord.Interaction, category: str, rule: str, kind: str = "keywords"
    ) -> None:
        await defer(interaction)
        await self.services.change_filter_rule(
            interaction.guild_id, interaction.user.id, category, rule, add=False, into=kind
        )
        await whisper(interaction, f"Removed {kind} rule `{rule}` from **{category}**.")

    @filters.command(name="test", description="What the filter says about a prompt, and why")
    @app_commands.describe(negative="A negative prompt to test too")
    async def filter_test(self, interaction: discord.Interaction, prompt: str, negative: str = "") -> None:
        await defer(interaction)
        verdicts = await self.services.test_prompt(interaction.guild_id, prompt, negative)
        await whisper(interaction, "\n".join(explained(verdict, named=bool(negative)) for verdict in verdicts))

    # the queue

    @app_commands.command(name="pause", description="Pause the GPU for every server (operator)", extras=OPERATOR)
    async def pause(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        await self.services.dreams.pause(interaction.user.id)
        accepting = "still accepted" if self.services.settings.scheduler.accept_while_paused else "refused"
        await whisper(interaction, f"⏸️ The queue is paused; new jobs are {accepting}. `/admin resume` to go on.")

    @app_commands.command(name="resume", description="Resume the GPU for every server (operator)", extras=OPERATOR)
    async def resume(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        await self.services.dreams.resume(interaction.user.id)
        await whisper(interaction, "▶️ The queue is running again.")

    @app_commands.command(name="reload", description="Re-read the config file (operator)", extras=OPERATOR)
    async def reload(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        reloaded = await self.services.reload_config()
        categories = f"{reloaded.categories} categories, with the live rule changes on top"
        lines = [f"Reloaded the config. The prompt filter has {categories}."]
        if reloaded.applied:
            lines.append(f"**Applied now:** {key_list(reloaded.applied)}")
        if reloaded.at_restart:
            lines.append(f"**Changed, applied at the next restart:** {key_list(reloaded.at_restart)}")
        if not reloaded.applied and not reloaded.at_restart:
            lines.append("No setting changed.")
        await whisper(interaction, "\n".join(lines))

    @app_commands.command(name="forget", description="Cancel a member's jobs, delete their prompts, flags and flagged "
                                                     "images here")  # fmt: skip
    @app_commands.describe(member="Whose data, in this server only")
    async def forget(self, interaction: discord.Interaction, member: discord.User) -> None:
        await defer(interaction)
        forgotten = await self.services.forgetting.member(interaction.guild_id, member.id, interaction.user.id)
        await whisper(interaction, f"Forgot {member.mention} in this server: {forgotten.describe()}.")

    @app_commands.command(name="stats", description="Queue, throughput, engine time, moderation figures")
    async def stats(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        stats, flags, blocked = await self.services.stats(server_id(interaction))
        embed = discord.Embed(title="dreamqueue stats", colour=render.BLURPLE, timestamp=discord.utils.utcnow())
        queue = f"{stats.queued_jobs} jobs ({stats.queued_images} images), {stats.running_jobs} running"
        embed.add_field(name="Queue", value=queue + (" · ⏸️ paused" if stats.paused else ""))
        embed.add_field(name="All servers", value=f"{stats.all_queued_jobs} jobs waiting")
        embed.add_field(name="Last hour", value=f"{stats.jobs_last_hour} jobs, {stats.images_last_hour} images")
        for name, value in render.engine_fields(stats):
            embed.add_field(name=name, value=value)
        average = "n/a" if stats.average_generation_seconds is None else f"{stats.average_generation_seconds:.1f} s"
        embed.add_field(name="Mean batch time per job (1 h)", value=average)
        embed.add_field(name="Speed", value=f"{stats.seconds_per_image_step:.3f} s per 512² image step")
        embed.add_field(name="Quota multiplier", value=f"×{stats.multiplier:g}")
        embed.add_field(name="Blocked prompts (24 h)", value=str(blocked))
        embed.add_field(name="Open flags", value=f"{flags.open} ({flags.open_hidden} hidden)")
        await whisper(interaction, embed=embed)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Admin(bot))

