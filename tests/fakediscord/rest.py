"""The fake REST API, under ``/api/v10``: login, gateway discovery, application commands,
interaction callbacks and webhooks, channel messages, a few guild and user reads.

Every response carries ``X-RateLimit-*`` headers. Errors are Discord's JSON errors. Unknown
routes answer 404 and are listed in ``FakeDiscord.unhandled``. Tests can add real rate limits
per route (:class:`RateLimit`) or make the next matching request fail (:class:`Injection`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors
from .errors import DiscordError
from .limits import check_choices, check_message, check_modal
from .messages import StoredMessage, Upload
from .records import EPHEMERAL, LOADING, Request

if TYPE_CHECKING:
    from .interaction import FakeInteraction
    from .model import FakeChannel
    from .server import FakeDiscord

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIX = r"/api/v{version:\d+}"
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
# Callback types Discord accepts for each interaction type (2 command, 3 component, 4 autocomplete, 5 modal).
_CALLBACKS_FOR = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}


@dataclass
class RateLimit:
    """``limit`` requests per ``per`` seconds for one route, counted per major parameter."""

    limit: int
    per: float
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)  # major -> (start, count)

    def take(self, major: str, now: float) -> tuple[bool, int, float]:
        """Count a request: (allowed, remaining, seconds until the window resets)."""
        start, count = self.windows.get(major, (now, 0))
        if now - start >= self.per:
            start, count = now, 0
        allowed = count < self.limit
        count += allowed
        self.windows[major] = (start, count)
        return allowed, self.limit - count, start + self.per - now


@dataclass
class Injection:
    """Answer the next ``times`` requests to ``route`` with this error instead."""

    route: str
    status: int
    code: int
    message: str
    retry_after: float
    times: int


class Rest:
    """The REST handlers. Each route has a key like ``"POST /channels/{channel_id}/messages"``."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.keys: dict[Any, str] = {}

    def install(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway),
            ("GET", "/applications/{application_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/commands", self.put_commands),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback),
            ("POST", "/webhooks/{application_id}/{token}", self.create_followup),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self.get_webhook_message),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}", self.delete_webhook_message),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.list_messages),
            ("POST", "/channels/{channel_id}/messages", self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        for method, path, handler in routes:
            route = app.router.add_route(method, API_PREFIX + path, handler)
            self.keys[route] = f"{method} {path}"
        app.router.add_get("/attachments/{channel}/{attachment_id}/{filename}", self.get_attachment)
        app.middlewares.append(self.middleware)

    # ---- cross-cutting: auth, errors, injected failures, rate limits, the request log -------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fake = self.fake
        key = self.keys.get(request.match_info.route)
        if key is None:
            response = await self._unrouted(request, handler)
        else:
            major = _major(request)
            limit = fake.rate_limits.get(key)
            allowed, remaining, reset_after = limit.take(major, time.monotonic()) if limit else (True, 49, 1.0)
            try:
                if not allowed:
                    response = _rate_limited(reset_after)
                elif (injected := self._injected(key)) is not None:
                    response = injected
                else:
                    self._authorize(request, key)
                    response = await handler(request)
            except DiscordError as exc:
                response = json_response(exc.body(), status=exc.status)
            response.headers.update(
                _rate_limit_headers(key, major, limit.limit if limit else 50, remaining, reset_after)
            )
        fake.requests.append(
            Request(request.method, request.path, response.status, fake.clock(), _error_code(response))
        )
        fake.notify_change()
        return response

    async def _unrouted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/"):
                raise
            log.warning("fakediscord: no route for %s %s", request.method, request.path)
            self.fake.unhandled.append(Request(request.method, request.path, 404, self.fake.clock(), 0))
            return json_response(
                {"message": "404: Not Found", "code": 0}, status=404 if exc.status == 404 else exc.status
            )

    def _injected(self, key: str) -> web.Response | None:
        for injection in self.fake.injections:
            if injection.route == key and injection.times > 0:
                injection.times -= 1
                if injection.status == 429:
                    return _rate_limited(injection.retry_after)
                body = {"message": injection.message, "code": injection.code}
                return json_response(body, status=injection.status)
        return None

    def _authorize(self, request: web.Request, key: str) -> None:
        """Bot routes need ``Authorization: Bot <token>``; interaction and webhook routes use their token."""
        if key.split(" ", 1)[1].startswith(("/interactions/", "/webhooks/", "/gateway")):
            return
        if request.headers.get("Authorization") != f"Bot {self.fake.token}":
            raise errors.unauthorized()

    # ---- login and discovery ----------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.fake.bot_user.payload(), "verified": True, "mfa_enabled": False})

    async def get_application(self, request: web.Request) -> web.Response:
        fake = self.fake
        return json_response(
            {
                "id": str(fake.application_id),
                "name": fake.bot_user.name,
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": fake.bot_user.payload(),
                "owner": fake.app_owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(fake.guilds),
            }
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.fake.gateway_url, "shards": 1, "session_start_limit": limit})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.find_user(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        user = self.fake.find_user(int((await request.json())["recipient_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(self.fake.dm_channel(user).payload())

    # ---- application commands -----------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.fake.application_id:
            raise DiscordError(404, 10002, "Unknown Application")
        if "guild_id" not in request.match_info:
            return None
        return self.fake.guild_by_id(int(request.match_info["guild_id"])).id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake.commands.list(self._command_scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        return json_response(self.fake.commands.overwrite(scope, await request.json()))

    # ---- interactions -------------------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        ix = fake.interactions.get(int(request.match_info["interaction_id"]))
        if ix is None or ix.token != request.match_info["token"] or ix.expired:
            raise errors.unknown_interaction()
        if ix.channel.deleted:
            raise errors.unknown_channel()
        if ix.callback_type is not None:
            raise errors.already_acknowledged()
        if fake.ack_deadline is not None and ix.since_dispatch() > fake.ack_deadline:
            raise errors.unknown_interaction()
        body, uploads = await read_body(request)
        kind, data = body.get("type"), body.get("data") or {}
        if kind not in _CALLBACKS_FOR[ix.type] or (kind in (6, 7) and ix.message is None):
            raise errors.invalid_form("type", f"Callback type {kind} is not valid for interaction type {ix.type}")
        message: StoredMessage | None = None
        before: set[int] = set()
        if kind == 4:
            check_message(data, files=len(uploads), creating=True)
            fake.check_upload_size(ix.channel, uploads)
            message = ix.original = fake.create_message(
                ix.channel, fake.bot_user, data, uploads, flags=(data.get("flags") or 0) & EPHEMERAL, interaction=ix
            )
        elif kind == 5:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            message = ix.original = fake.create_message(ix.channel, fake.bot_user, {}, [], flags=flags, interaction=ix)
            ix.deferred_reply_pending = True
        elif kind == 6:
            ix.original = ix.message
        elif kind == 7:
            assert ix.message is not None
            check_message(data, files=len(uploads), creating=False)
            fake.check_upload_size(ix.channel, uploads)
            before = {a.id for a in ix.message.attachments}
            message = ix.original = fake.edit_message(ix.message, data, uploads)
        elif kind == 8:
            check_choices(data.get("choices") or [])
        elif kind == 9:
            check_modal(data)
        ix.callback_type = kind
        fake.record("response", interaction=ix, callback_type=kind, body=body, message=message, before=before)
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        result: dict[str, Any] = {"interaction": {"id": str(ix.id), "type": ix.type}}
        if message is not None:
            result["interaction"].update(
                response_message_id=str(message.id),
                response_message_loading=kind == 5,
                response_message_ephemeral=message.ephemeral,
            )
            result["resource"] = {"type": kind, "message": fake.render(message)}
        return json_response(result)

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        if int(request.match_info["application_id"]) != self.fake.application_id:
            raise errors.unknown_webhook()
        ix = self.fake.interaction_by_token(request.match_info["token"])
        if ix is None:
            raise errors.unknown_webhook()
        if ix.expired:
            raise errors.invalid_webhook_token()
        if ix.channel.deleted:
            raise errors.unknown_channel()
        return ix

    def _webhook_message(self, ix: FakeInteraction, message_id: str) -> StoredMessage:
        if message_id == "@original":
            message = ix.original
        else:
            message = self.fake.messages.get(int(message_id))
            if message is not None and message.interaction_id != ix.id and message is not ix.original:
                message = None
        if message is None or message.deleted:
            raise errors.unknown_message()
        return message

    async def create_followup(self, request: web.Request) -> web.Response:
        fake = self.fake
        ix = self._webhook_interaction(request)
        if ix.callback_type in (None, 8):
            raise errors.unknown_webhook()
        body, uploads = await read_body(request)
        check_message(body, files=len(uploads), creating=True)
        fake.check_upload_size(ix.channel, uploads)
        placeholder = ix.original
        if ix.deferred_reply_pending and placeholder is not None and not placeholder.deleted:
            # Discord turns the "thinking..." reply into the first followup, keeping its visibility.
            ix.deferred_reply_pending = False
            message = fake.edit_message(placeholder, body, uploads)
        else:
            flags = (body.get("flags") or 0) & EPHEMERAL
            message = fake.create_message(
                ix.channel, fake.bot_user, body, uploads, flags=flags, interaction=ix, followup_of=ix.original
            )
        fake.record("followup", interaction=ix, body=body, message=message)
        return json_response(fake.render(message))

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        return json_response(self.fake.render(self._webhook_message(ix, request.match_info["message_id"])))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        ix = self._webhook_interaction(request)
        message = self._webhook_message(ix, request.match_info["message_id"])
        body, uploads = await read_body(request)
        check_message(body, files=len(uploads), creating=False)
        fake.check_upload_size(ix.channel, uploads)
        if message is ix.original:
            ix.deferred_reply_pending = False
        before = {a.id for a in message.attachments}
        fake.edit_message(message, body, uploads)
        fake.record("edit", interaction=ix, body=body, message=message, before=before)
        return json_response(fake.render(message))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        message = self._webhook_message(ix, request.match_info["message_id"])
        self.fake.remove_message(message)
        self.fake.record("delete", interaction=ix, body={}, message=message)
        return web.Response(status=204)

    # ---- channels and messages ----------------------------------------------------------------

    def _channel(self, request: web.Request, *needs: str) -> FakeChannel:
        """The channel, if the bot can see it and has the ``needs`` permissions in it."""
        channel = self.fake.channel(int(request.match_info["channel_id"]))
        if channel.guild is not None:
            have = channel.guild.me.permissions_in(channel)
            if not have.view_channel:
                raise DiscordError(403, 50001, "Missing Access")
            if not all(getattr(have, need) for need in needs):
                raise errors.missing_permissions()
        return channel

    def _message(self, channel: FakeChannel, request: web.Request) -> StoredMessage:
        message = self.fake.messages.get(int(request.match_info["message_id"]))
        if message is None or message.channel is not channel or message.deleted or message.ephemeral:
            raise errors.unknown_message()
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request).payload())

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request, "read_message_history")
        limit = int(request.query.get("limit", 50))
        newest_first = reversed(self.fake.visible_messages(channel))
        return json_response([self.fake.render(m) for m in itertools.islice(newest_first, limit)])

    async def create_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        body, uploads = await read_body(request)
        channel = self._channel(request, "send_messages", *(("attach_files",) if uploads else ()))
        check_message(body, files=len(uploads), creating=True)
        fake.check_upload_size(channel, uploads)
        message = fake.create_message(channel, fake.bot_user, body, uploads)
        fake.record("channel_message", channel=channel, body=body, message=message)
        return json_response(fake.render(message))

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request, "read_message_history")
        return json_response(self.fake.render(self._message(channel, request)))

    async def edit_message(self, request: web.Request) -> web.Response:
        fake = self.fake
        channel = self._channel(request)
        message = self._message(channel, request)
        if message.author is not fake.bot_user:
            raise errors.not_author()
        body, uploads = await read_body(request)
        check_message(body, files=len(uploads), creating=False)
        fake.check_upload_size(channel, uploads)
        before = {a.id for a in message.attachments}
        fake.edit_message(message, body, uploads)
        fake.record("channel_edit", channel=channel, body=body, message=message, before=before)
        return json_response(fake.render(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request)
        others = message.author is not self.fake.bot_user and channel.guild is not None
        if others and not channel.guild.me.permissions_in(channel).manage_messages:
            raise errors.missing_permissions()
        self.fake.remove_message(message)
        self.fake.record("channel_delete", channel=channel, body={}, message=message)
        return web.Response(status=204)

    async def typing(self, request: web.Request) -> web.Response:
        channel = self._channel(request, "send_messages")
        self.fake.record("typing", channel=channel, body={})
        return web.Response(status=204)

    async def add_reaction(self, request: web.Request) -> web.Response:
        channel = self._channel(request, "add_reactions")
        message = self._message(channel, request)
        self.fake.record("reaction", channel=channel, body={"emoji": request.match_info["emoji"]}, message=message)
        return web.Response(status=204)

    # ---- guilds and files ---------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.fake.guild_by_id(int(request.match_info["guild_id"]))
        payload = guild.payload()
        for key in ("channels", "members", "threads", "voice_states", "presences"):
            payload.pop(key)
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.fake.guild_by_id(int(request.match_info["guild_id"]))
        return json_response([channel.payload() for channel in guild.channels])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.fake.guild_by_id(int(request.match_info["guild_id"]))
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    async def get_attachment(self, request: web.Request) -> web.Response:
        attachment = self.fake.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None:
            raise web.HTTPNotFound()
        return web.Response(body=attachment.data, content_type=attachment.content_type)


async def read_body(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """The JSON body, or for multipart the ``payload_json`` part and the ``files[n]`` parts."""
    if request.content_type != "multipart/form-data":
        return (await request.json() if request.can_read_body else {}), []
    body: dict[str, Any] = {}
    uploads = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if part.name == "payload_json":
            body = json.loads(await part.text())
        elif (match := _FILE_FIELD.fullmatch(part.name or "")) is not None:
            uploads.append(Upload(int(match[1]), part.filename or f"file{match[1]}", bytes(await part.read())))
    return body, uploads


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with exactly ``Content-Type: application/json``, which discord.py requires to parse it."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers, content_type="application/json")


def _error_code(response: web.StreamResponse) -> int | None:
    if response.status < 400 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    return json.loads(response.body).get("code")


def _major(request: web.Request) -> str:
    """Discord counts rate limits per channel, guild or webhook (its "major parameters")."""
    info = request.match_info
    for name in ("channel_id", "guild_id", "token"):
        if name in info:
            return info[name]
    return ""


def _rate_limit_headers(key: str, major: str, limit: int, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": f"{abs(hash(key)):x}",
    }


def _rate_limited(retry_after: float) -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False, "code": 0}
    headers = {"Via": "1.1 google", "Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": "user"}
    return json_response(body, status=429, headers=headers)
