"""The fake gateway: Discord's websocket protocol as the discord.py client speaks it.

HELLO (heartbeat interval) -> the client heartbeats (each ACKed) and IDENTIFYs -> READY (user,
application id, guilds as unavailable stubs) then one GUILD_CREATE per guild with channels,
roles and members. Dispatches carry sequence numbers; a session outlives its connection, so a
client whose socket the server closed RESUMEs and is replayed what it missed. ``zlib-stream``
transport compression is used when the client asks for it (one zlib stream per connection,
each message ending in a Z_SYNC_FLUSH), plain JSON text frames otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 3, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
AUTHENTICATION_FAILED = 4004

GUILDS, GUILD_MEMBERS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 1, 1 << 9, 1 << 12, 1 << 15
_EVENT_INTENTS = {
    "CHANNEL_CREATE": GUILDS,
    "CHANNEL_UPDATE": GUILDS,
    "CHANNEL_DELETE": GUILDS,
    "GUILD_ROLE_CREATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
}
_MESSAGE_EVENTS = ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE")


class Connection:
    """One websocket connection; frames go out in order through a single writer task."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compress else None
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[float]]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, payload: dict[str, Any]) -> asyncio.Future[float]:
        """Queue a frame; the future resolves (with the loop time) once it is written."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((payload, future))
        return future

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            payload, future = await self._queue.get()
            text = json.dumps(payload)
            try:
                if self._zlib is not None:
                    await self.ws.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                _fail(future, exc)
            else:
                future.set_result(loop.time())

    async def close(self, code: int) -> None:
        await self.ws.close(code=code)

    def stop(self) -> None:
        self._writer.cancel()
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            _fail(future, ConnectionError("gateway connection closed"))


def _fail(future: asyncio.Future[float], exc: BaseException) -> None:
    """Fail a frame's future; whoever awaits it gets ``exc``, unawaited ones are not logged."""
    future.set_exception(exc)
    future.exception()  # marks it retrieved: most dispatches (MESSAGE_CREATE...) are fire-and-forget


class Session:
    """A gateway session: sequence numbers and history survive a dropped connection."""

    def __init__(self, intents: int) -> None:
        self.id = secrets.token_hex(16)
        self.intents = intents
        self.seq = 0
        self.history: list[dict[str, Any]] = []
        self.connection: Connection | None = None

    def wants(self, event: str, data: dict[str, Any]) -> bool:
        if event in _MESSAGE_EVENTS:
            return bool(self.intents & (GUILD_MESSAGES if "guild_id" in data else DIRECT_MESSAGES))
        required = _EVENT_INTENTS.get(event)
        return required is None or bool(self.intents & required)

    def dispatch(self, event: str, data: dict[str, Any]) -> asyncio.Future[float] | None:
        """Send a DISPATCH (or keep it for a RESUME while disconnected); None if not sent now."""
        self.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.history.append(payload)
        return self.connection.send(payload) if self.connection is not None else None


class Gateway:
    """Serves the websocket at ``/gateway`` and keeps the current session."""

    def __init__(self, fake: FakeDiscord, *, heartbeat_interval: float) -> None:
        self._fake = fake
        self.heartbeat_interval = heartbeat_interval
        self.sessions: dict[str, Session] = {}
        self.current: Session | None = None
        self.heartbeats = 0
        self.identifies = 0
        self.resumes = 0
        self.presence: dict[str, Any] | None = None

    @property
    def connected(self) -> bool:
        return self.current is not None and self.current.connection is not None

    def dispatch(self, event: str, data: dict[str, Any]) -> asyncio.Future[float] | None:
        """Send an event to the connected bot if its intents ask for it."""
        session = self.current
        if session is None or not session.wants(event, data):
            return None
        if event in _MESSAGE_EVENTS and not session.intents & MESSAGE_CONTENT:
            data = self._without_content(data)
        return session.dispatch(event, data)

    def _without_content(self, message: dict[str, Any]) -> dict[str, Any]:
        """Without the MESSAGE_CONTENT intent, others' messages arrive with their content emptied
        (unless they mention the bot)."""
        bot_id = str(self._fake.bot_user.id)
        author_id = (message.get("author") or {}).get("id")
        if author_id in (None, bot_id) or any(u["id"] == bot_id for u in message.get("mentions", ())):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    async def close_connection(self, code: int) -> None:
        """Close the bot's websocket from the server side (the session stays resumable)."""
        if self.current is not None and self.current.connection is not None:
            await self.current.connection.close(code)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(ws, compress=request.query.get("compress") == "zlib-stream")
        connection.send(
            {"op": HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}, "s": None, "t": None}
        )
        session: Session | None = None
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                op, data = frame.get("op"), frame.get("d")
                if op == HEARTBEAT:
                    self.heartbeats += 1
                    connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                elif op == IDENTIFY:
                    session = await self._identify(connection, data)
                elif op == RESUME:
                    session = self._resume(connection, data)
                elif op == REQUEST_MEMBERS and session is not None:
                    self._send_members(session, data)
                elif op == PRESENCE_UPDATE:
                    self.presence = data
        finally:
            if session is not None and session.connection is connection:
                session.connection = None
            connection.stop()
            self._fake.notify_change()
        return ws

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self._fake.token:
            await connection.close(AUTHENTICATION_FAILED)
            return None
        self.identifies += 1
        session = Session(int(data.get("intents", 0)))
        session.connection = connection
        self.sessions[session.id] = session
        self.current = session
        fake = self._fake
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**fake.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in fake.guilds],
            "session_id": session.id,
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        session.dispatch("READY", ready)
        for guild in fake.guilds:
            session.dispatch("GUILD_CREATE", guild.payload())
        fake.notify_change()
        return session

    def _resume(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self._fake.token:
            connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        self.resumes += 1
        session.connection = connection
        self.current = session
        for payload in session.history:
            if payload["s"] > (data.get("seq") or 0):
                connection.send(payload)
        session.dispatch("RESUMED", {})
        self._fake.notify_change()
        return session

    def _send_members(self, session: Session, data: dict[str, Any]) -> None:
        guild_ids = data.get("guild_id")
        guild_ids = guild_ids if isinstance(guild_ids, list) else [guild_ids]
        for guild in self._fake.guilds:
            if str(guild.id) in {str(g) for g in guild_ids}:
                chunk = {
                    "guild_id": str(guild.id),
                    "members": [member.payload() for member in guild.members.values()],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                }
                if data.get("nonce"):
                    chunk["nonce"] = data["nonce"]
                session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
