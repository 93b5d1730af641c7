"""One dispatched interaction: its token's life and everything the bot answered to it."""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .model import FakeChannel, FakeMember, FakeUser, snowflake, utcnow
from .records import Event, Message

if TYPE_CHECKING:
    from .messages import StoredMessage
    from .server import FakeDiscord

TOKEN_LIFETIME = 15 * 60.0  # seconds; Discord's interaction tokens die after 15 minutes
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
_CONTEXT_MESSAGE_TYPE = {1: 20, 2: 23, 3: 23}  # command type -> type of the reply message


class FakeInteraction:
    """An interaction the fake sent to the bot, and the bot's answers to it (``events``).

    ``age`` backdates the interaction (its snowflake id and the token's remaining life), to
    exercise a bot's "older than 14 minutes" paths without waiting.
    """

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        type: int,
        user: FakeUser,
        member: FakeMember | None,
        channel: FakeChannel,
        data: dict[str, Any],
        message: StoredMessage | None = None,
        command: dict[str, Any] | None = None,
        age: datetime.timedelta = datetime.timedelta(0),
    ) -> None:
        self._fake = fake
        self.id = snowflake(utcnow() - age)
        self.token = secrets.token_urlsafe(48)
        self.type = type
        self.user = user
        self.member = member
        self.channel = channel
        self.data = data
        self.message = message  # the message a component/modal interaction came from
        self.command = command
        self._lifetime = TOKEN_LIFETIME - age.total_seconds()
        self.dispatched_at: float | None = None  # time.monotonic() when sent on the gateway
        self._first_event = 0
        self._expired = False
        self.callback_type: int | None = None
        self.original: StoredMessage | None = None
        self.deferred_reply_pending = False  # a type-5 reply whose first followup replaces it
        self.events: list[Event] = []

    def __repr__(self) -> str:
        name = self.command["name"] if self.command else self.data.get("custom_id")
        return f"<FakeInteraction {self.id} type={self.type} {name!r} by {self.user.name}>"

    # ---- token lifetime -------------------------------------------------------------------

    def expire(self) -> None:
        """Kill the token now, as Discord does after 15 minutes: callbacks 404, webhooks 401."""
        self._expired = True

    @property
    def expired(self) -> bool:
        if self._expired:
            return True
        return self.dispatched_at is not None and time.monotonic() - self.dispatched_at > self._lifetime

    def mark_dispatched(self, *, first_event: int) -> None:
        """Start the clocks (``elapsed``, token life) as the event goes out; later events are ours."""
        self.dispatched_at = time.monotonic()
        self._first_event = first_event

    def since_dispatch(self) -> float:
        return time.monotonic() - self.dispatched_at if self.dispatched_at is not None else 0.0

    # ---- gateway payload ------------------------------------------------------------------

    def payload(self) -> dict[str, Any]:
        """The INTERACTION_CREATE event data."""
        fake = self._fake
        guild = self.channel.guild
        channel_payload = self.channel.payload()
        data: dict[str, Any] = {
            "id": str(self.id),
            "application_id": str(fake.application_id),
            "type": self.type,
            "data": self.data,
            "channel_id": str(self.channel.id),
            "channel": channel_payload,
            "token": self.token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": guild.filesize_limit if guild else fake.dm_filesize_limit,
        }
        if guild is not None and self.member is not None:
            channel_payload["permissions"] = str(self.member.permissions_in(self.channel).value)
            data.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=self.member.payload(channel=self.channel),
                app_permissions=str(guild.me.permissions_in(self.channel).value),
                authorizing_integration_owners=self._owners(),
                context=0,
            )
        else:
            data.update(user=self.user.payload(), authorizing_integration_owners=self._owners(), context=1)
        if self.message is not None:
            data["message"] = self.message.payload()
        return data

    def _owners(self) -> dict[str, str]:
        """Who installed the app for this interaction: the guild, or the user in a DM."""
        guild = self.channel.guild
        return {"0": str(guild.id)} if guild is not None else {"1": str(self.user.id)}

    def message_metadata(self, *, followup_of: StoredMessage | None = None) -> dict[str, Any]:
        """``interaction_metadata`` of a message the bot sends in answer to this interaction."""
        metadata: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.user.payload(),
            "authorizing_integration_owners": self._owners(),
        }
        if self.command is not None:
            metadata["name"] = self.command["name"]
            metadata["command_type"] = self.command["type"]
        if self.message is not None:
            metadata["interacted_message_id"] = str(self.message.id)
        if followup_of is not None:
            metadata["original_response_message_id"] = str(followup_of.id)
        return metadata

    @property
    def reply_message_type(self) -> int:
        """Discord's message type for replies: CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND or DEFAULT."""
        return _CONTEXT_MESSAGE_TYPE.get(self.command["type"], 0) if self.command else 0

    # ---- what the bot answered ------------------------------------------------------------

    @property
    def original_message(self) -> Message | None:
        """The original response message as it stands now (None before a message response)."""
        return self.original.snapshot() if self.original is not None else None

    def _own_and_channel_messages(self, include_channel: bool) -> Callable[[Event], bool]:
        def relevant(event: Event) -> bool:
            if event.interaction_id == self.id:
                return True
            return (
                include_channel
                and event.kind in ("channel_message", "channel_edit")
                and event.channel_id == self.channel.id
            )

        return relevant

    async def wait_response(self, timeout: float | None = None) -> Event:
        """The first callback (type 4, 5, 6, 7, 8 or 9): ``.callback_type``, ``.ephemeral``, ``.elapsed``."""
        return await self.wait_event(lambda e: e.kind == "response", timeout=timeout, what="a response")

    async def wait_event(
        self, predicate: Callable[[Event], bool], *, timeout: float | None = None, what: str = "an event"
    ) -> Event:
        """The first event answering this interaction that satisfies ``predicate``."""
        return await self._fake.wait_event(
            lambda e: e.interaction_id == self.id and predicate(e),
            timeout=timeout,
            since=self._first_event,
            what=f"{what} to {self!r}",
        )

    async def wait_message(
        self,
        predicate: Callable[[Message], bool] | None = None,
        *,
        timeout: float | None = None,
        include_channel: bool = True,
    ) -> Message:
        """The first message state matching ``predicate`` among this interaction's response,
        followups and their edits -- and, with ``include_channel``, messages posted or edited in
        the interaction's channel after it was dispatched (a bot's late-result path).
        Deferred "thinking" placeholders and deleted messages never match."""
        relevant = self._own_and_channel_messages(include_channel)

        def matches(event: Event) -> bool:
            m = event.message
            return (
                relevant(event)
                and m is not None
                and not m.loading
                and not m.deleted
                and event.kind not in ("delete", "channel_delete")
                and (predicate is None or predicate(m))
            )

        event = await self._fake.wait_event(
            matches, timeout=timeout, since=self._first_event, what=f"a message for {self!r}"
        )
        assert event.message is not None
        return event.message

    async def wait_choices(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The autocomplete choices the bot answered (callback type 8)."""
        event = await self.wait_event(lambda e: e.callback_type == 8, timeout=timeout, what="autocomplete choices")
        return event.data.get("choices") or []

    async def wait_modal(self, timeout: float | None = None) -> dict[str, Any]:
        """The modal the bot opened (callback type 9): ``custom_id``, ``title``, ``components``."""
        event = await self.wait_event(lambda e: e.callback_type == 9, timeout=timeout, what="a modal")
        return event.data
