"""What the fake recorded: immutable snapshots a test can assert on.

Every request that changes something becomes an :class:`Event`, in arrival order, carrying the
body the bot sent and a :class:`Message` snapshot of the message as it stood right after.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .limits import walk_components

EPHEMERAL = 1 << 6
LOADING = 1 << 7


@dataclass(frozen=True)
class Attachment:
    """An uploaded file, with its bytes."""

    id: int
    filename: str
    content_type: str
    data: bytes
    url: str
    description: str | None = None
    width: int | None = None  # read from the image header, when it is an image
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def spoiler(self) -> bool:
        return self.filename.startswith("SPOILER_")

    def image(self) -> Image.Image:
        """Decode the file with Pillow (raises if it is not an image)."""
        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


@dataclass(frozen=True)
class Mentions:
    """Who a message pings, after ``allowed_mentions`` (what would notify, given the permission)."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False
    replied_user: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone or self.replied_user)


@dataclass(frozen=True)
class Message:
    """A message as it stood at one moment (a snapshot: later edits make new snapshots)."""

    id: int
    channel_id: int
    author_id: int
    content: str
    embeds: tuple[dict[str, Any], ...]
    components: tuple[dict[str, Any], ...]
    flags: int
    attachments: tuple[Attachment, ...]
    allowed_mentions: dict[str, Any] | None
    mentions: Mentions
    interaction_id: int | None
    deleted: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True for a deferred "Bot is thinking..." placeholder."""
        return bool(self.flags & LOADING)

    @property
    def embed(self) -> dict[str, Any] | None:
        return self.embeds[0] if self.embeds else None

    def walk_components(self) -> list[dict[str, Any]]:
        """Every component, depth first (rows, then their buttons and selects)."""
        return list(walk_components(list(self.components)))

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in self.walk_components() if c.get("type") == 2]

    def component(self, custom_id: str | None = None, *, label: str | None = None) -> dict[str, Any]:
        """The component with this custom id or label; KeyError naming what is there if none."""
        for component in self.walk_components():
            if (custom_id is None or component.get("custom_id") == custom_id) and (
                label is None or component.get("label") == label
            ):
                return component
        raise KeyError(f"no component {custom_id or label!r} on message {self.id}; has {self.custom_ids}")


@dataclass(frozen=True)
class Event:
    """One thing the bot did, in order.

    ``kind`` is one of: ``response`` (interaction callback), ``followup``, ``edit`` and ``delete``
    (through the interaction webhook), ``channel_message``, ``channel_edit``, ``channel_delete``,
    ``reaction``, ``typing``.
    """

    kind: str
    at: float  # seconds since the fake started
    elapsed: float | None  # seconds since the interaction it answers was dispatched
    interaction_id: int | None
    channel_id: int | None
    callback_type: int | None  # interaction callback type for kind == "response"
    body: dict[str, Any] = field(repr=False)
    files: tuple[Attachment, ...] = ()
    message: Message | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The message fields sent: ``body["data"]`` for a callback, else the body itself."""
        return (self.body.get("data") or {}) if self.kind == "response" else self.body

    @property
    def ephemeral(self) -> bool:
        if self.message is not None:
            return self.message.ephemeral
        return bool((self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def deferred(self) -> bool:
        return self.callback_type in (5, 6)

    @property
    def content(self) -> str | None:
        return self.message.content if self.message is not None else self.data.get("content")

    @property
    def embeds(self) -> tuple[dict[str, Any], ...]:
        return self.message.embeds if self.message is not None else tuple(self.data.get("embeds") or ())

    @property
    def components(self) -> tuple[dict[str, Any], ...]:
        return self.message.components if self.message is not None else tuple(self.data.get("components") or ())

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")


@dataclass(frozen=True)
class Request:
    """One HTTP request the fake answered (every route, including unknown ones)."""

    method: str
    path: str
    status: int
    at: float
    code: int | None = None  # Discord's JSON error code, for errors
