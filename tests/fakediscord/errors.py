"""Errors: the Discord-style HTTP errors the fake answers with, and the ones it raises at a test."""

from __future__ import annotations

from typing import Any


class DiscordError(Exception):
    """An error response as Discord sends it: an HTTP status and a JSON body with a numeric code."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def unknown_channel() -> DiscordError:
    return DiscordError(404, 10003, "Unknown Channel")


def unknown_message() -> DiscordError:
    return DiscordError(404, 10008, "Unknown Message")


def unknown_webhook() -> DiscordError:
    return DiscordError(404, 10015, "Unknown Webhook")


def unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


def invalid_webhook_token() -> DiscordError:
    return DiscordError(401, 50027, "Invalid Webhook Token")


def already_acknowledged() -> DiscordError:
    return DiscordError(400, 40060, "Interaction has already been acknowledged.")


def missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def not_author() -> DiscordError:
    return DiscordError(403, 50005, "Cannot edit a message authored by another user")


def too_large() -> DiscordError:
    return DiscordError(413, 40005, "Request entity too large")


def invalid_form(field: str, message: str) -> DiscordError:
    return DiscordError(
        400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": "INVALID", "message": message}]}}
    )


def unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")


class InvalidInteraction(ValueError):
    """A test asked for an interaction that Discord's own client would not let a member make
    (unknown command or option, a value outside its range or choices, a disabled button...)."""


class CommandUnavailable(InvalidInteraction):
    """The member cannot see this command: it needs permissions (``default_member_permissions``)
    that the member does not have in that channel."""
