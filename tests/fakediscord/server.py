"""FakeDiscord: the loopback server, the discord.py patch, and the API tests drive it with."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import discord
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from . import errors, interaction_data
from .commands import CommandStore, check_visible
from .errors import InvalidInteraction
from .gateway import Gateway
from .interaction import APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL_SUBMIT, FakeInteraction
from .messages import StoredMessage, Upload
from .model import DEFAULT_BOT_PERMISSIONS, FakeChannel, FakeGuild, FakeMember, FakeUser, utcnow
from .records import Attachment, Event, Message, Request
from .rest import Injection, RateLimit, Rest

T = TypeVar("T")

DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024  # Discord's upload limit for unboosted guilds and DMs
EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    add_reactions=True,
    embed_links=True,
    attach_files=True,
    use_external_emojis=True,
    use_application_commands=True,
    create_instant_invite=True,
    change_nickname=True,
)
Invoker = FakeMember | FakeUser


class FakeDiscord:
    """A loopback Discord: gateway + REST on 127.0.0.1, with discord.py pointed at it while open.

    ``ack_deadline`` (seconds, default off) makes callbacks arriving later than that after
    dispatch fail with "Unknown interaction", as Discord does after 3 s. ``guild_ready_timeout``
    shortens how long a started bot waits for more GUILD_CREATEs before on_ready (discord.py
    waits 2 s; the fake sends them all at once). ``timeout`` is the default for every ``wait_*``.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "dreamqueue",
        heartbeat_interval: float = 1.0,
        ack_deadline: float | None = None,
        guild_ready_timeout: float = 0.2,
        timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.bot_user = FakeUser(bot_name, bot=True)
        self.app_owner = FakeUser("app-owner")
        self.application_id = self.bot_user.id
        self.ack_deadline = ack_deadline
        self.guild_ready_timeout = guild_ready_timeout
        self.timeout = timeout
        self.dm_filesize_limit = DEFAULT_FILESIZE_LIMIT
        self.guilds: list[FakeGuild] = []
        self.dm_channels: dict[int, FakeChannel] = {}
        self.commands = CommandStore(self.application_id)
        self.gateway = Gateway(self, heartbeat_interval=heartbeat_interval)
        self.interactions: dict[int, FakeInteraction] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, Attachment] = {}
        self.events: list[Event] = []
        self.requests: list[Request] = []
        self.unhandled: list[Request] = []
        self.logged_errors: list[logging.LogRecord] = []  # ERROR logs while open (the bot's tracebacks)
        self.rate_limits: dict[str, RateLimit] = {}
        self.injections: list[Injection] = []
        self.base_url = self.gateway_url = ""
        self._rest = Rest(self)
        self._app = web.Application(client_max_size=200 * 1024 * 1024)
        self._app.router.add_get("/gateway", self.gateway.handle)
        self._rest.install(self._app)
        self._runner: web.AppRunner | None = None
        self._saved_patch: tuple[str, yarl.URL] | None = None
        self._started = time.monotonic()
        self._change = asyncio.Event()
        self._bot: discord.Client | None = None
        self._bot_task: asyncio.Task[None] | None = None
        self._log_handler = _ErrorCollector(self.logged_errors)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Serve on an ephemeral loopback port and point discord.py at it."""
        self._runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{port}"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        self._saved_patch = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = f"{self.base_url}/api/v10"
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        logging.getLogger().addHandler(self._log_handler)

    async def close(self) -> None:
        """Stop the bot if one runs, undo the patch, stop serving."""
        try:
            await self.stop_bot()
        finally:
            logging.getLogger().removeHandler(self._log_handler)
            if self._saved_patch is not None:
                Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_patch
                self._saved_patch = None
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

    def clock(self) -> float:
        """Seconds since this fake was created (the ``at`` of events and requests)."""
        return time.monotonic() - self._started

    # ---- the bot ------------------------------------------------------------------------------

    @property
    def bot(self) -> discord.Client | None:
        return self._bot

    async def start_bot(self, bot: discord.Client, token: str | None = None, *, timeout: float = 30.0) -> None:
        """Log ``bot`` in (which runs its ``setup_hook``), connect it, and return once it is
        ready with every guild available. Raises what the bot raised if it fails to start."""
        if self._bot is not None:
            raise RuntimeError("a bot is already running; await fake.stop_bot() first")
        bot._connection.guild_ready_timeout = min(bot._connection.guild_ready_timeout, self.guild_ready_timeout)
        self._bot = bot
        try:
            await asyncio.wait_for(bot.login(token or self.token), timeout)
            self._bot_task = asyncio.create_task(bot.connect(), name="fakediscord-bot")
            self._bot_task.add_done_callback(lambda _: self.notify_change())
            ready = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait({ready, self._bot_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if self._bot_task in done:
                self._bot_task.result()
                raise RuntimeError("the bot's connection ended before it was ready")
            if not done:
                raise TimeoutError(f"the bot was not ready after {timeout}s")
            await self._poll(
                lambda: all(
                    bot.get_guild(g.id) is not None and not bot.get_guild(g.id).unavailable for g in self.guilds
                ),
                timeout,
            )
        except BaseException:
            await self.stop_bot()
            raise

    async def stop_bot(self, timeout: float = 10.0) -> None:
        """Close the bot (as on shutdown) and wait for its connection to end."""
        bot, task = self._bot, self._bot_task
        self._bot = self._bot_task = None
        if bot is None:
            return
        await bot.close()
        if task is not None:
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout)
        self.gateway.current = None

    async def disconnect(self, code: int = 4000, *, timeout: float | None = None) -> None:
        """Close the bot's websocket from the server side; return once the client reconnected."""
        gateway = self.gateway
        before = gateway.identifies + gateway.resumes

        def reconnected() -> bool | None:
            return (gateway.connected and gateway.identifies + gateway.resumes > before) or None

        await gateway.close_connection(code)
        await self._wait_until(reconnected, timeout, "the bot to reconnect")

    def _raise_if_bot_died(self) -> None:
        task = self._bot_task
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("the bot's connection task failed") from task.exception()

    # ---- the world ----------------------------------------------------------------------------

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        bot_permissions: discord.Permissions | None = None,
        everyone_permissions: discord.Permissions | None = None,
        filesize_limit: int = DEFAULT_FILESIZE_LIMIT,
        premium_tier: int = 0,
    ) -> FakeGuild:
        """A guild the bot is in, owned by a member named "owner". Add it before start_bot."""
        guild = FakeGuild(
            self,
            name,
            owner=FakeUser("owner"),
            bot_user=self.bot_user,
            bot_permissions=bot_permissions or DEFAULT_BOT_PERMISSIONS,
            everyone_permissions=everyone_permissions or EVERYONE_PERMISSIONS,
            filesize_limit=filesize_limit,
            premium_tier=premium_tier,
        )
        self.guilds.append(guild)
        return guild

    def remove_bot(self, guild: FakeGuild) -> None:
        """The bot is removed from (or leaves) a guild: it gets GUILD_DELETE."""
        self.guilds.remove(guild)
        self._emit("GUILD_DELETE", {"id": str(guild.id)})

    def invite_bot(self, guild: FakeGuild) -> None:
        """The bot is added to a guild made with :meth:`add_guild` after it started: it gets GUILD_CREATE."""
        payload = guild.payload()
        del payload["unavailable"]  # as Discord sends a join: no "unavailable" key
        self._emit("GUILD_CREATE", payload)

    async def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait for a condition on the bot's side that no event tells the fake about (e.g. a database row)."""
        await self._poll(condition, self.timeout if timeout is None else timeout)

    def guild_by_id(self, guild_id: int) -> FakeGuild:
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise errors.DiscordError(404, 10004, "Unknown Guild")

    def channel(self, channel_id: int) -> FakeChannel:
        """The guild or DM channel with this id (a Discord 404 if unknown or deleted)."""
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel
        for channel in self.dm_channels.values():
            if channel.id == channel_id:
                return channel
        raise errors.unknown_channel()

    def find_user(self, user_id: int) -> FakeUser | None:
        if user_id == self.bot_user.id:
            return self.bot_user
        for guild in self.guilds:
            if user_id in guild.members:
                return guild.members[user_id].user
        return None

    def dm_channel(self, user: Invoker) -> FakeChannel:
        """The DM channel between the bot and this user."""
        user = user.user if isinstance(user, FakeMember) else user
        if user.id not in self.dm_channels:
            self.dm_channels[user.id] = FakeChannel(
                None, f"dm-{user.name}", type=discord.ChannelType.private, recipient=user
            )
        return self.dm_channels[user.id]

    async def delete_channel(self, channel: FakeChannel) -> None:
        """Delete a guild channel (as an admin would): later requests to it get 404 Unknown Channel."""
        assert channel.guild is not None, "only guild channels can be deleted"
        channel.guild.channels.remove(channel)
        channel.deleted = True
        self._emit("CHANNEL_DELETE", channel.payload())

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Tell the connected bot about a change (no-op while no bot is connected)."""
        self.gateway.dispatch(event, data)

    # ---- messages -----------------------------------------------------------------------------

    def create_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        body: dict[str, Any],
        uploads: list[Upload],
        *,
        flags: int = 0,
        interaction: FakeInteraction | None = None,
        followup_of: StoredMessage | None = None,
    ) -> StoredMessage:
        message = StoredMessage(channel=channel, author=author)
        if interaction is not None:
            message.interaction_id = interaction.id
            message.interaction_metadata = interaction.message_metadata(followup_of=followup_of)
            message.type = interaction.reply_message_type
        if body.get("message_reference"):
            message.message_reference = body["message_reference"]
            message.type = 19
        message.apply(body, uploads, self._attachment_prefix)
        message.flags |= flags
        self.messages[message.id] = message
        self._register_attachments(message)
        if not message.ephemeral:
            self._emit("MESSAGE_CREATE", self.render(message))
        return message

    def edit_message(self, message: StoredMessage, body: dict[str, Any], uploads: list[Upload]) -> StoredMessage:
        message.apply(body, uploads, self._attachment_prefix)
        message.edited_at = utcnow()
        self._register_attachments(message)
        if not message.ephemeral:
            self._emit("MESSAGE_UPDATE", self.render(message))
        return message

    def remove_message(self, message: StoredMessage) -> None:
        message.deleted = True
        if not message.ephemeral:
            data = {"id": str(message.id), "channel_id": str(message.channel.id)}
            if message.channel.guild is not None:
                data["guild_id"] = str(message.channel.guild.id)
            self._emit("MESSAGE_DELETE", data)

    def render(self, message: StoredMessage) -> dict[str, Any]:
        """The message's Discord JSON."""
        return message.payload(self._referenced(message))

    def _referenced(self, message: StoredMessage) -> StoredMessage | None:
        if message.message_reference is None:
            return None
        return self.messages.get(int(message.message_reference["message_id"]))

    def snapshot(self, message: StoredMessage) -> Message:
        return message.snapshot(self._referenced(message))

    @property
    def _attachment_prefix(self) -> str:
        return f"{self.base_url}/attachments"

    def _register_attachments(self, message: StoredMessage) -> None:
        for attachment in message.attachments:
            self.attachments[attachment.id] = attachment

    def check_upload_size(self, channel: FakeChannel, uploads: list[Upload]) -> None:
        limit = channel.guild.filesize_limit if channel.guild is not None else self.dm_filesize_limit
        if any(len(upload.data) > limit for upload in uploads):
            raise errors.too_large()

    def visible_messages(self, channel: FakeChannel) -> list[StoredMessage]:
        """The channel's messages everyone can see (not ephemeral, not deleted), oldest first."""
        return [m for m in self.messages.values() if m.channel is channel and not m.deleted and not m.ephemeral]

    def message(self, message: Message | int) -> Message:
        """The current state of a message (``deleted`` is True once deleted)."""
        return self.snapshot(self._stored(message))

    def channel_messages(self, channel: FakeChannel) -> list[Message]:
        """Snapshots of the channel's visible messages, oldest first."""
        return [self.snapshot(m) for m in self.visible_messages(channel)]

    def _stored(self, message: Message | int) -> StoredMessage:
        message_id = message if isinstance(message, int) else message.id
        if message_id not in self.messages:
            raise InvalidInteraction(f"no message {message_id}")
        return self.messages[message_id]

    async def post_message(
        self, author: Invoker, channel: FakeChannel, content: str = "", *, files: Sequence[tuple[str, bytes]] = ()
    ) -> Message:
        """A member posts a message in a channel (the bot gets MESSAGE_CREATE)."""
        user = author.user if isinstance(author, FakeMember) else author
        uploads = [Upload(i, name, data) for i, (name, data) in enumerate(files)]
        return self.snapshot(self.create_message(channel, user, {"content": content}, uploads))

    async def delete_message(self, message: Message | int) -> None:
        """Someone (a moderator, the author) deletes a message: later requests get 404 Unknown Message."""
        self.remove_message(self._stored(message))

    # ---- recording and waiting ----------------------------------------------------------------

    def record(
        self,
        kind: str,
        *,
        body: dict[str, Any],
        interaction: FakeInteraction | None = None,
        channel: FakeChannel | None = None,
        callback_type: int | None = None,
        message: StoredMessage | None = None,
        before: Collection[int] = (),
    ) -> Event:
        """Append an event (``before``: attachment ids the message had before this request)."""
        if channel is None and interaction is not None:
            channel = interaction.channel
        event = Event(
            kind=kind,
            at=self.clock(),
            elapsed=interaction.since_dispatch() if interaction is not None else None,
            interaction_id=interaction.id if interaction is not None else None,
            channel_id=channel.id if channel is not None else None,
            callback_type=callback_type,
            body=body,
            files=tuple(a for a in message.attachments if a.id not in before) if message and kind != "delete" else (),
            message=self.snapshot(message) if message is not None else None,
        )
        self.events.append(event)
        if interaction is not None:
            interaction.events.append(event)
        self.notify_change()
        return event

    def notify_change(self) -> None:
        """Wake every ``wait_*`` so it looks again (called on each event, request and connection change)."""
        self._change.set()
        self._change = asyncio.Event()

    async def _wait_until(self, find: Callable[[], T | None], timeout: float | None, what: str) -> T:
        loop = asyncio.get_running_loop()
        limit = self.timeout if timeout is None else timeout
        deadline = loop.time() + limit
        while (found := find()) is None:
            self._raise_if_bot_died()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {what} after {limit}s.\n{self.describe()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._change.wait(), remaining)
        return found

    async def _poll(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait for a condition on the client's side, which the server is not told about."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            self._raise_if_bot_died()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met after {timeout}s")
            await asyncio.sleep(0.01)

    async def wait_event(
        self,
        predicate: Callable[[Event], bool],
        *,
        timeout: float | None = None,
        since: int = 0,
        what: str = "matching event",
    ) -> Event:
        """The first event (from index ``since``) matching ``predicate``, waiting for it if needed."""
        return await self._wait_until(
            lambda: next((e for e in self.events[since:] if predicate(e)), None), timeout, what
        )

    async def wait_request(
        self, predicate: Callable[[Request], bool], *, timeout: float | None = None, since: int = 0
    ) -> Request:
        """The first HTTP request (from index ``since``) matching ``predicate``, e.g. a rejected one."""
        return await self._wait_until(
            lambda: next((r for r in self.requests[since:] if predicate(r)), None), timeout, "matching request"
        )

    async def wait_message(
        self,
        predicate: Callable[[Message], bool] | None = None,
        *,
        channel: FakeChannel | None = None,
        timeout: float | None = None,
    ) -> Message:
        """The first message state (created or edited, any channel or ``channel``) matching ``predicate``."""
        event = await self.wait_event(
            lambda e: (
                e.message is not None
                and not e.message.loading
                and not e.message.deleted
                and (channel is None or e.channel_id == channel.id)
                and (predicate is None or predicate(e.message))
            ),
            timeout=timeout,
            what="matching message",
        )
        assert event.message is not None
        return event.message

    def describe(self, last: int = 15) -> str:
        """A summary of recent events and failed requests, for timeout messages."""
        lines = ["recent events:"]
        for e in self.events[-last:]:
            content = (e.content or "")[:80]
            lines.append(f"  {e.at:7.3f}s {e.kind} type={e.callback_type} ephemeral={e.ephemeral} {content!r}")
        failed = [r for r in self.requests if r.status >= 400][-last:]
        if failed:
            lines.append("failed requests:")
            lines += [f"  {r.at:7.3f}s {r.method} {r.path} -> {r.status} code={r.code}" for r in failed]
        if self.unhandled:
            lines.append(f"unhandled routes: {[f'{r.method} {r.path}' for r in self.unhandled]}")
        for record in self.logged_errors[-3:]:
            lines.append(f"logged error from {record.name}: {self._log_handler.format(record)}")
        return "\n".join(lines)

    # ---- commands -----------------------------------------------------------------------------

    def synced_commands(self, guild: FakeGuild | None = None) -> list[dict[str, Any]]:
        """The commands registered for ``guild`` (or globally), as synced, with ids and versions."""
        return self.commands.list(guild.id if guild is not None else None)

    def command(self, name: str, guild: FakeGuild | None = None, *, type: int = 1) -> dict[str, Any]:
        """One synced command (guild first, then global)."""
        return self.commands.find(guild.id if guild is not None else None, name, type)

    # ---- interactions -------------------------------------------------------------------------

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        return next((ix for ix in self.interactions.values() if ix.token == token), None)

    def _invoker(self, who: Invoker, channel: FakeChannel) -> tuple[FakeUser, FakeMember | None]:
        if channel.deleted:
            raise InvalidInteraction(f"#{channel.name} was deleted")
        if channel.guild is None:
            return (who.user if isinstance(who, FakeMember) else who), None
        if not isinstance(who, FakeMember) or who.guild is not channel.guild:
            raise InvalidInteraction(f"{who!r} is not a member of {channel.guild.name}")
        if not who.permissions_in(channel).view_channel:
            raise InvalidInteraction(f"{who.name} cannot see #{channel.name}")
        return who.user, who

    def _resolved(self, member: FakeMember | None, channel: FakeChannel) -> interaction_data.Resolved:
        return interaction_data.Resolved(
            member, channel, self._attachment_prefix, lambda a: self.attachments.__setitem__(a.id, a)
        )

    def _usable_command(
        self, who: Invoker, channel: FakeChannel, name: str, type: int
    ) -> tuple[dict[str, Any], FakeUser, FakeMember | None]:
        user, member = self._invoker(who, channel)
        command = self.commands.find(channel.guild.id if channel.guild else None, name, type)
        if member is not None:
            if not member.permissions_in(channel).use_application_commands:
                raise errors.CommandUnavailable(f"{member.name} cannot use application commands in #{channel.name}")
            check_visible(command, member, channel)
        return command, user, member

    async def _dispatch(self, ix: FakeInteraction) -> FakeInteraction:
        if not self.gateway.connected:
            raise RuntimeError("no bot is connected: await fake.start_bot(bot) first")
        self.interactions[ix.id] = ix
        ix.mark_dispatched(first_event=len(self.events))
        sent = self.gateway.dispatch("INTERACTION_CREATE", ix.payload())
        assert sent is not None
        await sent
        return ix

    async def slash(
        self,
        who: Invoker,
        channel: FakeChannel,
        name: str,
        /,
        *subcommands: str,
        options: Mapping[str, Any] | None = None,
        age: datetime.timedelta = datetime.timedelta(0),
        strict: bool = True,
        **values: Any,
    ) -> FakeInteraction:
        """``who`` runs ``/name [group] [subcommand] option:value...`` in ``channel``.

        Options come as keyword arguments (or ``options={...}`` for names that clash with this
        signature); members, roles and channels for user/role/channel options, ``(filename,
        bytes)`` for attachments. ``strict=False`` skips the client-side checks of types, ranges
        and choices, to send what a modified client could.
        """
        command, user, member = self._usable_command(who, channel, name, 1)
        data = interaction_data.chat_input(
            command, subcommands, {**(options or {}), **values}, self._resolved(member, channel), strict=strict
        )
        return await self._dispatch(
            FakeInteraction(
                self,
                type=APPLICATION_COMMAND,
                user=user,
                member=member,
                channel=channel,
                data=data,
                command=command,
                age=age,
            )
        )

    async def autocomplete(
        self,
        who: Invoker,
        channel: FakeChannel,
        name: str,
        /,
        *subcommands: str,
        focused: str,
        options: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> FakeInteraction:
        """``who`` is typing option ``focused`` of ``/name``; ``values`` are what is typed so far.
        ``await ix.wait_choices()`` gives the bot's suggestions."""
        command, user, member = self._usable_command(who, channel, name, 1)
        data = interaction_data.chat_input(
            command, subcommands, {**(options or {}), **values}, self._resolved(member, channel), focused=focused
        )
        return await self._dispatch(
            FakeInteraction(
                self, type=AUTOCOMPLETE, user=user, member=member, channel=channel, data=data, command=command
            )
        )

    async def context_menu(
        self,
        who: Invoker,
        target: Message | FakeMember | FakeUser,
        name: str,
        /,
        *,
        channel: FakeChannel | None = None,
        age: datetime.timedelta = datetime.timedelta(0),
    ) -> FakeInteraction:
        """``who`` picks Apps > ``name`` on a message (a message command) or a member (a user
        command; then say in which ``channel``)."""
        if isinstance(target, Message):
            stored = self._stored(target)
            if stored.deleted:
                raise InvalidInteraction(f"message {stored.id} was deleted")
            channel, kind, resolved_target = stored.channel, 3, stored
        else:
            if channel is None:
                raise InvalidInteraction("a user command needs the channel it is used in")
            kind, resolved_target = 2, target
        command, user, member = self._usable_command(who, channel, name, kind)
        data = interaction_data.context_menu(command, resolved_target, self._resolved(member, channel))
        return await self._dispatch(
            FakeInteraction(
                self,
                type=APPLICATION_COMMAND,
                user=user,
                member=member,
                channel=channel,
                data=data,
                command=command,
                age=age,
            )
        )

    def _component_message(
        self, who: Invoker, message: Message | int
    ) -> tuple[StoredMessage, FakeUser, FakeMember | None]:
        stored = self._stored(message)
        if stored.deleted:
            raise InvalidInteraction(f"message {stored.id} was deleted")
        user, member = self._invoker(who, stored.channel)
        if stored.ephemeral and stored.interaction_id is not None:
            owner = self.interactions[stored.interaction_id].user
            if owner is not user:
                raise InvalidInteraction(f"only {owner.name} can see ephemeral message {stored.id}")
        return stored, user, member

    async def click(
        self,
        who: Invoker,
        message: Message | int,
        custom_id: str | None = None,
        /,
        *,
        label: str | None = None,
        age: datetime.timedelta = datetime.timedelta(0),
    ) -> FakeInteraction:
        """``who`` clicks the button with this custom id (or label) on the message as it is now."""
        stored, user, member = self._component_message(who, message)
        data = interaction_data.button(self.snapshot(stored), custom_id, label)
        return await self._dispatch(
            FakeInteraction(
                self,
                type=MESSAGE_COMPONENT,
                user=user,
                member=member,
                channel=stored.channel,
                data=data,
                message=stored,
                age=age,
            )
        )

    async def select(
        self, who: Invoker, message: Message | int, custom_id: str, values: Sequence[Any], /
    ) -> FakeInteraction:
        """``who`` picks ``values`` in a select menu (option values, or members/roles/channels)."""
        stored, user, member = self._component_message(who, message)
        data = interaction_data.select(self.snapshot(stored), custom_id, values, self._resolved(member, stored.channel))
        return await self._dispatch(
            FakeInteraction(
                self,
                type=MESSAGE_COMPONENT,
                user=user,
                member=member,
                channel=stored.channel,
                data=data,
                message=stored,
            )
        )

    async def submit_modal(
        self, opened_by: FakeInteraction, values: Mapping[str, Any] | None = None, /, *, timeout: float | None = None
    ) -> FakeInteraction:
        """The member fills in and submits the modal the bot opened in answer to ``opened_by``.
        ``values`` maps input custom ids to text (selects: lists of option values)."""
        modal = await opened_by.wait_modal(timeout)
        data = interaction_data.modal_submit(modal, values or {}, self._resolved(opened_by.member, opened_by.channel))
        return await self._dispatch(
            FakeInteraction(
                self,
                type=MODAL_SUBMIT,
                user=opened_by.user,
                member=opened_by.member,
                channel=opened_by.channel,
                data=data,
                message=opened_by.message,
            )
        )

    # ---- failure injection --------------------------------------------------------------------

    def rate_limit(self, route: str, *, limit: int, per: float) -> None:
        """Enforce ``limit`` requests per ``per`` seconds on a route (per channel/webhook/guild),
        answering 429 beyond it (with honest ``X-RateLimit-*`` headers before that). ``route`` is a
        key like ``"PATCH /channels/{channel_id}/messages/{message_id}"``; see ``routes()``."""
        self._check_route(route)
        self.rate_limits[route] = RateLimit(limit, per)

    def fail_next(
        self,
        route: str,
        *,
        status: int = 429,
        code: int = 0,
        message: str = "injected failure",
        retry_after: float = 0.05,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with an error (429: a rate limit)."""
        self._check_route(route)
        self.injections.append(Injection(route, status, code, message, retry_after, times))

    def routes(self) -> list[str]:
        """The route keys the fake serves, e.g. ``"POST /channels/{channel_id}/messages"``."""
        return sorted(self._rest.keys.values())

    def _check_route(self, route: str) -> None:
        if route not in self.routes():
            raise ValueError(f"unknown route {route!r}; routes: {self.routes()}")


class _ErrorCollector(logging.Handler):
    """Keeps ERROR records (a bot's "Ignoring exception in command" tracebacks) for timeout messages."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record)
