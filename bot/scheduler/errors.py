"""Errors the scheduler raises to the Discord layer: each one's text is safe to show a member.

The Discord layer catches :class:`DreamError` and replies with ``str(error)``
ephemerally; the attributes carry the same facts for richer rendering (for
example a Discord timestamp from ``reset_at``).
"""

from __future__ import annotations

import math


def describe_wait(seconds: float) -> str:
    """``seconds`` as a short human duration: "40 seconds", "5 minutes", "3 hours"."""
    seconds = max(1.0, seconds)
    if seconds < 90:
        return f"{math.ceil(seconds)} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


class DreamError(Exception):
    """Base of every member-facing scheduler error; ``str(error)`` is the reply."""


class InvalidRequest(DreamError):
    """The request is outside what the engine can make; ``field`` names the option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class OverTierLimit(DreamError):
    """The request is bigger than the member's tier allows (images, steps or size)."""

    def __init__(self, limit: str, allowed: int, requested: int, tier: str) -> None:
        super().__init__(f"Your tier ({tier}) allows {limit} up to {allowed:,}; this request asks for {requested:,}.")
        self.limit = limit
        self.allowed = allowed
        self.requested = requested
        self.tier = tier


class QuotaExceeded(DreamError):
    """The request would go over a quota; ``limit`` is ``"burst"`` or ``"daily"``.

    ``reset_at`` is the clock time (unix seconds) from which the same request
    would be accepted.
    """

    def __init__(self, limit: str, reset_at: float, now: float, detail: str) -> None:
        super().__init__(f"{detail} You can make this request again in {describe_wait(reset_at - now)}.")
        self.limit = limit
        self.reset_at = reset_at


class MemberQueueFull(DreamError):
    """The member already has as many jobs waiting or running as their tier allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"You already have {limit} jobs in the queue, your limit; wait for one to finish.")
        self.limit = limit


class RelaxQueueFull(DreamError):
    """The member already has as many relax jobs waiting or running as the server allows."""

    def __init__(self, limit: int) -> None:
        jobs = f"{limit} relax job{'s' if limit != 1 else ''}"
        text = (f"You already have {jobs} in the queue, this server's limit; wait for one to finish, or use "
                "`mode: fast`.") if limit else "This server has no relax mode; use `mode: fast`."
        super().__init__(text)
        self.limit = limit


def _minutes(minutes: int) -> str:
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class QueueFull(DreamError):
    """The queue of every server together is at the operator's cap; ``minutes`` estimates when there will be room."""

    def __init__(self, limit: int, minutes: int) -> None:
        super().__init__(f"The bot's queue is full: {limit:,} jobs are waiting or running across all servers, its "
                         f"limit; try again in {_minutes(minutes)}.")  # fmt: skip
        self.limit = limit
        self.minutes = minutes


class ServerQueueFull(DreamError):
    """This server's jobs are at the per-server cap (other servers may still get in); ``minutes`` as for
    :class:`QueueFull`."""

    def __init__(self, limit: int, minutes: int) -> None:
        super().__init__(f"This server's share of the queue is full: {limit:,} of its jobs are waiting or running, "
                         f"the limit for one server; try again in {_minutes(minutes)}.")  # fmt: skip
        self.limit = limit
        self.minutes = minutes


class Banned(DreamError):
    """The member may not generate; ``until`` is None for a ban without expiry."""

    def __init__(self, until: float | None, reason: str, now: float) -> None:
        how_long = "" if until is None else f" for another {describe_wait(until - now)}"
        why = f" Reason: {reason}" if reason else ""
        super().__init__(f"You are banned from generating images{how_long}.{why}")
        self.until = until
        self.reason = reason


class Paused(DreamError):
    """An admin has paused the queue and it is refusing new jobs."""

    def __init__(self) -> None:
        super().__init__("Image generation is paused by the admins; please try again later.")


class JobNotFound(DreamError):
    """The server has no job with this number (as members see it), or none with this internal id."""

    def __init__(self, number: int | None = None) -> None:
        # An internal id (from a button) is never shown: it means nothing to members and counts across servers.
        where = f"no job #{number}" if number else "no such job"
        super().__init__(f"There is {where} in this server.")
        self.number = number


class NotYourJob(DreamError):
    """A member tried to act on someone else's job."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"Job #{job_id} is not yours.")
        self.job_id = job_id


class ServiceStopped(DreamError):
    """The scheduler is not running (starting up or shutting down)."""

    def __init__(self) -> None:
        super().__init__("The bot is restarting; please try again in a moment.")


class InvalidLimit(DreamError):
    """An admin's value is not allowed; the message names the allowed range or choices."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"{limit}: {message}")
        self.limit = limit


class UnknownTier(DreamError):
    """An admin named a tier that does not exist."""

    def __init__(self, tier: str, tiers: list[str]) -> None:
        super().__init__(f"There is no tier {tier!r}; the tiers are {', '.join(tiers)}.")
        self.tier = tier
