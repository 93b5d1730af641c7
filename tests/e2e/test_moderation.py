"""Flags reach the moderators; review buttons act; ``/mod`` is for moderators only."""

from __future__ import annotations

import discord
import pytest

from tests.e2e.conftest import World, has_text, shows_progress
from tests.fakediscord import CommandUnavailable


async def flag(world: World, who, message, reason: str = "sexual", note: str = "") -> str:
    """``who`` clicks Flag on ``message`` and submits the form; return the private answer."""
    click = await world.fake.click(who, message, label="Flag")
    modal = await click.wait_modal()
    [reason_input, note_input] = [label["component"]["custom_id"] for label in modal["components"]]
    submitted = await world.fake.submit_modal(click, {reason_input: [reason], note_input: note})
    return (await submitted.wait_message(lambda m: m.ephemeral)).content


async def test_flags_alert_the_moderators_then_hide_and_the_review_buttons_act(world: World) -> None:
    app = await world.start()
    dave = world.guild.add_member("dave")
    result = await world.result(await world.dream(world.alice, prompt="a beach", count=1))

    assert "Thank you" in await flag(world, world.bob, result, note="not ok")
    assert "already flagged" in await flag(world, world.bob, result)
    assert world.fake.channel_messages(world.mods) == []  # score 1, below alert_score 2
    await flag(world, world.carol, result, reason="violence")
    alert = await world.fake.wait_message(channel=world.mods)
    embed = alert.embeds[0]
    assert embed["title"].startswith("🚩 Review #") and embed["description"] == "a beach"
    assert f"<@{world.alice.id}>" in str(embed["fields"]) and "not ok" in str(embed["fields"])
    assert alert.attachments[0].spoiler and alert.attachments[0].image().size[0] > 0
    assert [b["label"] for b in alert.buttons] == ["Dismiss", "Remove image", "Warn", "Ban"]

    await flag(world, dave, result, reason="sexual")  # score 3: hidden
    hidden = world.fake.message(result)
    assert "image" not in hidden.embeds[0] and hidden.attachments[0].spoiler

    denied = await world.fake.click(world.bob, alert, label="Remove image")  # a member who can see the channel
    assert "Only this server's moderators" in (await denied.wait_message(lambda m: m.ephemeral)).content
    click = await world.fake.click(world.moderator, alert, label="Remove image")
    said = await click.wait_message(lambda m: m.ephemeral)
    assert "**removed**" in said.content and "deleted" in said.content
    assert world.fake.message(result).deleted
    resolved = world.fake.message(alert)
    assert resolved.buttons == [] and "**removed** by" in str(resolved.embeds[0]["fields"])
    audit = await app.services.audit.entries(world.guild.id)
    assert [entry.action for entry in audit] == ["warning", "removed", "auto_hidden"]  # removing warns the author


async def test_flag_image_context_menu_and_the_review_queue(world: World) -> None:
    await world.start(moderation={"flags": {"alert_score": 5, "hide_score": 5}})
    result = await world.result(await world.dream(world.alice, prompt="a castle", count=1))
    menu = await world.fake.context_menu(world.bob, result, "Flag image")
    modal = await menu.wait_modal()
    reason_input = modal["components"][0]["component"]["custom_id"]
    submitted = await world.fake.submit_modal(menu, {reason_input: ["trademark"]})
    await submitted.wait_message(has_text("Thank you"))

    not_ours = await world.fake.post_message(world.bob, world.dreams, "hello")
    menu = await world.fake.context_menu(world.bob, not_ours, "Flag image")
    assert "Only images made with `/dream`" in (await menu.wait_response()).content

    review = await world.fake.slash(world.moderator, world.dreams, "mod", "review")
    item = await review.wait_message(lambda m: m.ephemeral and bool(m.embeds))
    assert item.content == "1 open item." and "trademark" in str(item.embeds[0])
    click = await world.fake.click(world.moderator, item, label="Dismiss")
    emptied = await click.wait_message(has_text("The review queue is empty"))
    assert "**dismissed**" in emptied.content and emptied.buttons == []
    assert world.fake.channel_messages(world.mods) == []  # below the alert score: no alert to update


async def test_ban_from_review_with_a_duration(world: World) -> None:
    await world.start(moderation={"flags": {"alert_score": 1, "hide_score": 5}})
    result = await world.result(await world.dream(world.alice, prompt="a tower", count=1))
    await flag(world, world.bob, result)
    alert = await world.fake.wait_message(channel=world.mods)
    click = await world.fake.click(world.moderator, alert, label="Ban")
    modal = await click.wait_modal()
    duration, reason = [label["component"]["custom_id"] for label in modal["components"]]
    submitted = await world.fake.submit_modal(click, {duration: ["1 week"], reason: "rule 3"})
    said = await submitted.wait_message(lambda m: m.ephemeral)
    assert f"<@{world.alice.id}> is banned from generating until <t:" in said.content
    refused = await world.dream(world.alice, prompt="a tree")
    message = await refused.wait_message(lambda m: m.ephemeral)
    assert "You are banned from generating images for another" in message.content
    assert "Reason: rule 3" in message.content


async def test_mod_commands_are_hidden_from_members_and_checked_again(world: World) -> None:
    await world.start()
    with pytest.raises(CommandUnavailable):
        await world.fake.slash(world.alice, world.dreams, "mod", "review")
    world.guild.opened_commands.add("mod")  # the server's admins let everyone see /mod: checked at use
    ix = await world.fake.slash(world.alice, world.dreams, "mod", "review")
    response = await ix.wait_response()
    assert response.ephemeral and "Only this server's moderators" in response.content
    # Manage Messages makes a moderator, without the config's moderator role:
    helpers = world.guild.add_role("Helpers", discord.Permissions(manage_messages=True))
    helper = world.guild.add_member("helper", roles=[helpers])
    ix = await world.fake.slash(helper, world.dreams, "mod", "review")
    assert "No flagged images are waiting" in (await ix.wait_message(lambda m: m.ephemeral)).content


async def test_mod_ban_unban_history_and_cancel(world: World) -> None:
    app = await world.start(engine={"simulated_seconds_per_step": 0.2})
    running = await world.dream(world.alice, prompt="slow", count=1, steps=30)
    status = await running.wait_message(shows_progress)
    job = status.embeds[0]["footer"]["text"].split("#")[1]
    cancel = await world.fake.slash(world.moderator, world.dreams, "mod", "cancel", job=int(job))
    assert "cancelled" in (await cancel.wait_message(lambda m: m.ephemeral)).content
    ended = await running.wait_message(has_text("✖️ Cancelled"))
    assert "cancelled by a moderator" in str(ended.embeds[0])  # it was running: the member is told who
    [entry] = await app.services.dreams.audit_log(world.guild.id)
    assert (entry.actor_id, entry.action, entry.target, entry.before, entry.after["state"]) == (
        world.moderator.id, "cancel", f"job #{job} of member {world.alice.id}", {"state": "running"}, "cancelled"
    )
    history = await world.fake.slash(world.moderator, world.dreams, "mod", "history", member=world.alice)
    fields = {f["name"]: f["value"] for f in (await history.wait_message(lambda m: m.ephemeral)).embeds[0]["fields"]}
    assert fields["Recent jobs"].startswith(f"• #{job} cancelled, <t:") and fields["Recent jobs"].endswith(": slow")

    ban = await world.fake.slash(
        world.moderator, world.dreams, "mod", "ban", member=world.bob, duration=1.0, reason="spam"
    )
    assert "is banned from generating until" in (await ban.wait_message(lambda m: m.ephemeral)).content
    blocked = await world.dream(world.bob, prompt="a N.U.D.E cat")
    await blocked.wait_message(lambda m: m.ephemeral)
    history = await world.fake.slash(world.moderator, world.dreams, "mod", "history", member=world.bob)
    shown = (await history.wait_message(lambda m: m.ephemeral)).embeds[0]
    assert "(banned)" in str(shown["fields"][0]) and "a N.U.D.E cat" in str(shown["fields"])
    assert {f["name"]: f["value"] for f in shown["fields"]}["Recent jobs"] == "none"  # a blocked prompt is no job
    unban = await world.fake.slash(world.moderator, world.dreams, "mod", "unban", member=world.bob)
    assert "may generate again" in (await unban.wait_message(lambda m: m.ephemeral)).content


async def test_history_marks_a_blocked_negative_prompt(world: World) -> None:
    await world.start()
    for options in ({"prompt": "a nude elf"}, {"prompt": "a lighthouse", "negative": "blurry, white power"}):
        blocked = await world.dream(world.alice, **options)
        await blocked.wait_message(lambda m: m.ephemeral and "🚫" in m.content)
    history = await world.fake.slash(world.moderator, world.dreams, "mod", "history", member=world.alice)
    fields = {f["name"]: f["value"] for f in (await history.wait_message(lambda m: m.ephemeral)).embeds[0]["fields"]}
    negative, prompt = fields["Recent blocked or noted prompts"].split("\n")
    assert negative.endswith("**block** hate (white power) in the **negative** prompt: blurry, white power")
    assert prompt.endswith("**block** sexual (nude): a nude elf")


async def test_dismissing_a_hidden_image_shows_it_again(world: World) -> None:
    await world.start(moderation={"flags": {"alert_score": 1, "hide_score": 1}}, discord={"hide_flagged": "remove"})
    result = await world.result(await world.dream(world.alice, prompt="a harmless duck", count=2))
    await flag(world, world.bob, result)
    hidden = world.fake.message(result)
    assert hidden.attachments == () and "image" not in hidden.embeds[0]
    alert = await world.fake.wait_message(channel=world.mods)
    click = await world.fake.click(world.moderator, alert, label="Dismiss")
    said = await click.wait_message(lambda m: m.ephemeral)
    assert "**dismissed**" in said.content and "shown again" in said.content
    shown = world.fake.message(result)
    assert len(shown.attachments) == 1 and shown.embeds[0]["image"]["url"] == shown.attachments[0].url
    assert "Hidden" not in str(shown.embeds[0]["fields"])
    assert [b["label"] for b in shown.buttons][:3] == ["Re-roll", "Flag", "Delete"]


async def test_a_second_moderator_acting_on_a_resolved_item_is_told(world: World) -> None:
    await world.start(moderation={"flags": {"alert_score": 1, "hide_score": 5}})
    result = await world.result(await world.dream(world.alice, prompt="a kite", count=1))
    await flag(world, world.bob, result)
    first = await world.fake.slash(world.moderator, world.dreams, "mod", "review")
    second = await world.fake.slash(world.admin, world.dreams, "mod", "review")
    views = [await ix.wait_message(lambda m: m.ephemeral and bool(m.embeds)) for ix in (first, second)]
    await (await world.fake.click(world.moderator, views[0], label="Warn")).wait_message(has_text("warned"))
    late = await world.fake.click(world.admin, views[1], label="Dismiss")
    said = await late.wait_message(lambda m: m.ephemeral and "already" in m.content)
    assert "Item #1 is already actioned; reopen it first." in said.content
    [alert] = world.fake.channel_messages(world.mods)  # resolved from /mod review: the alert says so too
    assert alert.buttons == [] and "**warned** by" in str(alert.embeds[0]["fields"])
    dm = world.fake.dm_channel(world.alice)
    [warning] = world.fake.channel_messages(dm)
    assert "this is a warning" in warning.content
