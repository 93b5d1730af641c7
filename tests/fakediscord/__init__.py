"""A loopback fake of Discord's gateway and REST API for end-to-end tests of a discord.py bot.

The real discord.py client connects to it: while a :class:`FakeDiscord` is open,
``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` point at a server on
127.0.0.1 (an ephemeral port); both are restored on close. The fake answers like Discord --
same JSON, same error codes, same size limits -- and records everything the bot does.

Setting up (pytest: ``from tests.fakediscord.plugin import fake_discord`` gives a ``fake_discord``
fixture; or ``pytest_plugins = ["tests.fakediscord.plugin"]`` in the root conftest)::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Dream Club")
        chan = guild.add_text_channel("dreams")
        mods = guild.add_role("Moderators", discord.Permissions(manage_messages=True))
        alice = guild.add_member("alice")
        bob = guild.add_member("bob", roles=[mods])
        await fake.start_bot(bot)                           # login + setup_hook + READY + guilds
        fake.synced_commands(guild)                         # what tree.sync(guild=...) sent, with ids

Driving it, as a member would (each returns a :class:`FakeInteraction` once dispatched)::

    ix = await fake.slash(alice, chan, "dream", prompt="a cat", count=2)
    ix = await fake.slash(bob, chan, "mod", "review")       # subcommand (group names too)
    ix = await fake.autocomplete(alice, chan, "dream", focused="sampler", prompt="x", sampler="eu")
    ix = await fake.context_menu(alice, msg, "Flag image")   # message command on a Message
    ix = await fake.click(alice, msg, "reroll:42")          # or label="Re-roll"
    ix = await fake.select(alice, msg, "reason", ["nsfw"])
    ix2 = await fake.submit_modal(ix, {"reason": "spam", "note": "..."})
    await fake.post_message(alice, chan, "hello")           # a member's own message
    await fake.delete_message(msg); await fake.delete_channel(chan)
    await fake.disconnect()                                 # server-side close; the client resumes
    await fake.stop_bot()                                   # then start_bot(new_bot) = a restart

Discord's client-side rules are enforced: unknown commands/options, values outside ranges or
choices, a member without the command's ``default_member_permissions``
(:class:`CommandUnavailable`), disabled buttons... raise :class:`InvalidInteraction`.

Reading what the bot did::

    resp = await ix.wait_response()       # first callback Event: .callback_type, .ephemeral, .elapsed
    msg = await ix.wait_message(lambda m: m.attachments)   # response, followup, edit, or channel post
    msg.attachments[0].image()            # decoded with PIL; msg.embeds, msg.components, msg.mentions
    choices = await ix.wait_choices(); modal = await ix.wait_modal()
    fake.events                           # every Event in order (kind, at, elapsed, body, files, message)
    await fake.wait_message(pred, channel=chan); await fake.wait_event(pred)
    fake.requests, fake.unhandled         # every HTTP request (status, Discord code); unknown routes
    await fake.wait_request(lambda r: r.status == 401)
    fake.message(msg)                     # a message's current state; fake.channel_messages(chan)
    fake.commands.syncs                   # every bulk overwrite exactly as tree.sync() sent it
    fake.logged_errors                    # ERROR log records (the bot's tracebacks), also in timeouts

A ``wait_*`` that times out raises ``TimeoutError`` listing recent events, failed requests and
logged errors, so a failing end-to-end test says what the bot did instead.

Discord behaviours simulated: interaction tokens expire after 15 minutes (``ix.expire()`` now,
or ``age=`` on an interaction to backdate it) -> callbacks 404 "Unknown interaction" (10062),
webhooks 401 "Invalid Webhook Token" (50027); a second callback -> 400 (40060); optional 3 s
acknowledgement deadline (``FakeDiscord(ack_deadline=3)``); the first followup after a deferred
reply replaces the "thinking" message; ephemeral messages are invisible to channel endpoints;
unknown channel/message -> 404 (10003/10008); missing permissions -> 403 (50013); uploads over
the guild's ``filesize_limit`` -> 413 (40005); message, embed, component, modal, autocomplete and
command-definition limits -> 400 "Invalid Form Body" (50035); ``allowed_mentions`` decides
``Message.mentions``; ``X-RateLimit-*`` headers on every response, real limits with
``fake.rate_limit(route, limit=, per=)`` and one-off failures with ``fake.fail_next(route, ...)``
(route keys from ``fake.routes()``, e.g. ``"POST /channels/{channel_id}/messages"``); intents
decide which events the bot gets (MESSAGE_CONTENT empties others' messages); a member's own
messages with ``fake.post_message``. Privileged intents are always granted.

Time: ``start_bot`` lowers discord.py's ``guild_ready_timeout`` (2 s) to the fake's (0.2 s) since all
GUILD_CREATEs come at once; heartbeats every second (``heartbeat_interval``).
"""

from .errors import CommandUnavailable, DiscordError, InvalidInteraction
from .interaction import FakeInteraction
from .model import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from .records import Attachment, Event, Mentions, Message, Request
from .server import FakeDiscord

__all__ = [
    "Attachment",
    "CommandUnavailable",
    "DiscordError",
    "Event",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "InvalidInteraction",
    "Mentions",
    "Message",
    "Request",
]
