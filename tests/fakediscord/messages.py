"""Messages held by the fake: created and edited from request bodies, rendered as Discord JSON.

Discord's rules kept here: edits replace only the fields they send; the ``attachments`` array
says which old files to keep and describes new uploads (``id`` = upload index); an edit clears
the deferred-loading flag but never the ephemeral one; ``allowed_mentions`` decides who is pinged.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .limits import IS_COMPONENTS_V2
from .model import FakeChannel, FakeUser, iso, snowflake, utcnow
from .records import EPHEMERAL, LOADING, Attachment, Mentions, Message

SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
_SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_ALL_MENTIONS = {"parse": ["users", "roles", "everyone"]}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request: ``files[index]``."""

    index: int
    filename: str
    data: bytes


@dataclass
class StoredMessage:
    """The fake's current state of one message."""

    channel: FakeChannel
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    allowed_mentions: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    interaction_metadata: dict[str, Any] | None = None
    interaction_id: int | None = None
    type: int = 0
    id: int = field(default_factory=snowflake)
    created_at: datetime.datetime = field(default_factory=utcnow)
    edited_at: datetime.datetime | None = None
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def mentions(self, replied_author: FakeUser | None) -> Mentions:
        """Who this message pings, Discord's way: mentions in the content, filtered by allowed_mentions."""
        allowed = self.allowed_mentions if self.allowed_mentions is not None else _ALL_MENTIONS
        parse = set(allowed.get("parse") or ())
        guild = self.channel.guild
        known_users = set(guild.members) if guild else set()
        known_roles = set(guild.roles_by_id) if guild else set()
        users = {int(u) for u in _USER_MENTION.findall(self.content)} & known_users
        roles = {int(r) for r in _ROLE_MENTION.findall(self.content)} & known_roles
        if "users" not in parse:
            users &= {int(u) for u in allowed.get("users") or ()}
        if "roles" not in parse:
            roles &= {int(r) for r in allowed.get("roles") or ()}
        everyone = "everyone" in parse and ("@everyone" in self.content or "@here" in self.content)
        # Without allowed_mentions a reply pings its author; with them, only if replied_user says so.
        replied = replied_author is not None and allowed.get("replied_user", allowed is _ALL_MENTIONS)
        return Mentions(frozenset(users), frozenset(roles), everyone, bool(replied))

    def apply(self, body: dict[str, Any], uploads: list[Upload], attachment_url: str) -> None:
        """Apply a create or edit body: only the fields present change."""
        if "content" in body:
            self.content = body["content"] or ""
        if "embeds" in body:
            self.embeds = [dict(embed, type=embed.get("type", "rich")) for embed in body["embeds"] or []]
        if "components" in body:
            self.components = copy.deepcopy(body["components"] or [])
        if "allowed_mentions" in body:
            self.allowed_mentions = body["allowed_mentions"]
        if body.get("flags") is not None:
            self.flags = (self.flags & EPHEMERAL) | (body["flags"] & _SETTABLE_FLAGS)
        if "attachments" in body or uploads:
            self.attachments = self._merge_attachments(body.get("attachments"), uploads, attachment_url)
        self.flags &= ~LOADING

    def _merge_attachments(
        self, described: list[dict[str, Any]] | None, uploads: list[Upload], attachment_url: str
    ) -> list[Attachment]:
        by_index = {upload.index: upload for upload in uploads}
        if described is None:
            described = [{"id": upload.index} for upload in uploads]
        kept = {attachment.id: attachment for attachment in self.attachments}
        result = []
        for entry in described:
            entry_id = int(entry["id"])
            if entry_id in kept:
                result.append(kept[entry_id])
            elif entry_id in by_index:
                upload = by_index[entry_id]
                filename = entry.get("filename") or upload.filename
                result.append(
                    make_attachment(
                        filename, upload.data, f"{attachment_url}/{self.channel.id}", entry.get("description")
                    )
                )
        return result

    def payload(self, referenced: StoredMessage | None = None) -> dict[str, Any]:
        """The message object as Discord's API returns it."""
        mentions = self.mentions(referenced.author if referenced else None)
        guild = self.channel.guild
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel.id),
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
            "tts": False,
            "mention_everyone": mentions.everyone,
            "mentions": [guild.members[u].user.payload() for u in mentions.users] if guild else [],
            "mention_roles": [str(r) for r in mentions.roles],
            "attachments": [attachment_payload(a) for a in self.attachments],
            "embeds": [_resolve_attachment_urls(embed, self.attachments) for embed in self.embeds],
            "components": copy.deepcopy(self.components),
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
            data["webhook_id"] = data["application_id"] = str(self.author.id)
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
            data["referenced_message"] = referenced.payload() if referenced else None
        return data

    def snapshot(self, referenced: StoredMessage | None = None) -> Message:
        raw = self.payload(referenced)
        return Message(
            id=self.id,
            channel_id=self.channel.id,
            author_id=self.author.id,
            content=self.content,
            embeds=tuple(raw["embeds"]),
            components=tuple(raw["components"]),
            flags=self.flags,
            attachments=tuple(self.attachments),
            allowed_mentions=copy.deepcopy(self.allowed_mentions),
            mentions=self.mentions(referenced.author if referenced else None),
            interaction_id=self.interaction_id,
            deleted=self.deleted,
            raw=raw,
        )


def make_attachment(filename: str, data: bytes, url_prefix: str, description: str | None = None) -> Attachment:
    """An attachment for uploaded bytes, served by the fake at ``{url_prefix}/{id}/{filename}``."""
    attachment_id = snowflake()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    width = height = None
    if content_type.startswith("image/"):
        # not a decodable image (or one Pillow will not open): Discord leaves the size out
        with contextlib.suppress(OSError, Image.DecompressionBombError):
            width, height = Image.open(io.BytesIO(data)).size  # reads the header only
    return Attachment(
        id=attachment_id,
        filename=filename,
        content_type=content_type,
        data=data,
        url=f"{url_prefix}/{attachment_id}/{filename}",
        description=description,
        width=width,
        height=height,
    )


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": attachment.size,
        "url": attachment.url,
        "proxy_url": attachment.url,
        "content_type": attachment.content_type,
    }
    if attachment.description is not None:
        data["description"] = attachment.description
    if attachment.width is not None:
        data["width"], data["height"] = attachment.width, attachment.height
    return data


def _resolve_attachment_urls(embed: dict[str, Any], attachments: list[Attachment]) -> dict[str, Any]:
    """Discord replaces ``attachment://name`` in embed images with the uploaded file's URL."""
    by_name = {f"attachment://{a.filename}": a.url for a in attachments}
    embed = copy.deepcopy(embed)
    for key in ("image", "thumbnail"):
        part = embed.get(key)
        if part and part.get("url") in by_name:
            part["url"] = part["proxy_url"] = by_name[part["url"]]
    return embed
