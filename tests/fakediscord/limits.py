"""Discord's documented size limits, checked the way Discord checks them: a 400 "Invalid Form Body"
(code 50035) whose ``errors`` tree names the bad field, so a bot that breaks a limit fails in tests
the way it would fail in production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .errors import DiscordError

IS_COMPONENTS_V2 = 1 << 15  # message flag: layout components instead of content and embeds
SELECT_TYPES = {3, 5, 6, 7, 8}  # string, user, role, mentionable and channel selects
_PARENT_KEYS = ("components", "accessory", "component")
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
_MAX_COMMANDS = {1: 100, 2: 5, 3: 5}
# Which subcommand option types each level of a chat-input command may contain.
_NESTABLE = {"command": {1, 2}, "group": {1}, "subcommand": set()}


class _Errors:
    """Collects field errors into Discord's nested ``errors`` shape."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], message: str, code: str = "BASE_TYPE_BAD_LENGTH") -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def length(self, path: tuple[str | int, ...], value: Any, high: int, low: int = 0) -> None:
        if value is not None and not low <= len(value) <= high:
            self.add(path, f"Must be between {low} and {high} in length.")

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordError(400, 50035, "Invalid Form Body", self.tree)


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component in a tree of rows, sections, containers and labels, depth first."""
    for component in components:
        yield component
        for key in _PARENT_KEYS:
            child = component.get(key)
            if isinstance(child, dict):
                yield from walk_components([child])
            elif isinstance(child, list):
                yield from walk_components(child)


def check_message(data: dict[str, Any], *, files: int, creating: bool) -> None:
    """Raise the error Discord would give for this message body (create or edit)."""
    errors = _Errors()
    content = data.get("content")
    embeds = data.get("embeds") or []
    components = data.get("components") or []
    v2 = bool((data.get("flags") or 0) & IS_COMPONENTS_V2)
    errors.length(("content",), content, 2000)
    if len(embeds) > 10:
        errors.add(("embeds",), "Must be 10 or fewer in length.")
    if sum(_check_embed(errors, ("embeds", i), embed) for i, embed in enumerate(embeds)) > 6000:
        errors.add(("embeds",), "Embed size exceeds maximum size of 6000", "MAX_EMBED_SIZE_EXCEEDED")
    if v2 and (content or embeds):
        errors.add(("content",), "The 'content' and 'embeds' fields cannot be used with IS_COMPONENTS_V2")
    _check_components(errors, components, v2=v2)
    if files > 10:
        errors.add(("files",), "Must be 10 or fewer in length.")
    errors.raise_if_any()
    if creating and not (content or embeds or components or files or data.get("poll") or data.get("sticker_ids")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _check_embed(errors: _Errors, path: tuple[str | int, ...], embed: dict[str, Any]) -> int:
    """Check one embed's field limits; return its character count toward the 6000 total."""
    texts = {
        ("title",): (embed.get("title"), 256),
        ("description",): (embed.get("description"), 4096),
        ("footer", "text"): ((embed.get("footer") or {}).get("text"), 2048),
        ("author", "name"): ((embed.get("author") or {}).get("name"), 256),
    }
    fields = embed.get("fields") or []
    if len(fields) > 25:
        errors.add((*path, "fields"), "Must be 25 or fewer in length.")
    for i, field in enumerate(fields):
        texts[("fields", i, "name")] = (field.get("name"), 256)
        texts[("fields", i, "value")] = (field.get("value"), 1024)
    for key, (text, high) in texts.items():
        errors.length((*path, *key), text, high)
    return sum(len(text or "") for text, _ in texts.values())


def _check_components(errors: _Errors, components: list[dict[str, Any]], *, v2: bool) -> None:
    if v2:
        if sum(1 for _ in walk_components(components)) > 40:
            errors.add(("components",), "Must be 40 or fewer in length.")
    else:
        if len(components) > 5:
            errors.add(("components",), "Must be 5 or fewer in length.")
        for i, row in enumerate(components):
            children = row.get("components") or []
            if row.get("type") != 1:
                errors.add(("components", i, "type"), "Top-level components must be action rows.", "UNION_TYPE_CHOICES")
            elif not 1 <= len(children) <= 5 or (
                any(c.get("type") in SELECT_TYPES for c in children) and len(children) > 1
            ):
                errors.add(("components", i, "components"), "An action row holds 1-5 buttons or one select.")
    seen: set[str] = set()
    for component in walk_components(components):
        custom_id = component.get("custom_id")
        if custom_id is not None:
            errors.length(("components", "custom_id"), custom_id, 100, 1)
            if custom_id in seen:
                errors.add(
                    ("components", "custom_id"),
                    "Component custom id cannot be duplicated",
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                )
            seen.add(custom_id)
        if component.get("type") == 2:
            errors.length(("components", "label"), component.get("label"), 80)
            if custom_id is None and component.get("style") not in (5, 6):
                errors.add(("components", "custom_id"), "A non-link button needs a custom_id.", "BASE_TYPE_REQUIRED")
        if component.get("type") in SELECT_TYPES:
            errors.length(("components", "options"), component.get("options"), 25)
            errors.length(("components", "placeholder"), component.get("placeholder"), 150)


def check_modal(data: dict[str, Any]) -> None:
    """Raise the error Discord would give for a modal (callback type 9)."""
    errors = _Errors()
    errors.length(("title",), data.get("title"), 45, 1)
    errors.length(("custom_id",), data.get("custom_id"), 100, 1)
    errors.length(("components",), data.get("components") or [], 5, 1)
    for component in walk_components(data.get("components") or []):
        if component.get("type") == 18:
            errors.length(("components", "label"), component.get("label"), 45, 1)
        if component.get("type") == 4:
            errors.length(("components", "custom_id"), component.get("custom_id"), 100, 1)
            errors.length(("components", "label"), component.get("label"), 45)
            errors.length(("components", "placeholder"), component.get("placeholder"), 100)
            errors.length(("components", "value"), component.get("value"), 4000)
    errors.raise_if_any()


def check_choices(choices: list[dict[str, Any]]) -> None:
    """Raise the error Discord would give for an autocomplete result (callback type 8)."""
    errors = _Errors()
    if len(choices) > 25:
        errors.add(("choices",), "Must be 25 or fewer in length.")
    for i, choice in enumerate(choices):
        errors.length(("choices", i, "name"), choice.get("name"), 100, 1)
        if isinstance(choice.get("value"), str):
            errors.length(("choices", i, "value"), choice["value"], 100)
    errors.raise_if_any()


def check_commands(commands: list[dict[str, Any]]) -> None:
    """Raise the error Discord would give for a bulk overwrite of application commands."""
    errors = _Errors()
    seen: set[tuple[str, int]] = set()
    counts = {1: 0, 2: 0, 3: 0}
    for i, command in enumerate(commands):
        kind = command.get("type", 1)
        key = (command.get("name", ""), kind)
        if key in seen:
            errors.add((i, "name"), "Application command names must be unique", "APPLICATION_COMMANDS_DUPLICATE_NAME")
        seen.add(key)
        counts[kind] = counts.get(kind, 0) + 1
        if kind == 1:
            _check_chat_input(errors, (i,), command, level="command")
        else:
            errors.length((i, "name"), command.get("name"), 32, 1)
            if command.get("description"):
                errors.add((i, "description"), "Context menu commands cannot have a description.")
        if _command_size(command) > 4000:
            errors.add((i,), "Command exceeds maximum size (4000)", "APPLICATION_COMMAND_TOO_LARGE")
    for kind, count in counts.items():
        if count > _MAX_COMMANDS.get(kind, 0):
            errors.add(
                (), f"Maximum number of application commands of type {kind} reached ({_MAX_COMMANDS.get(kind)})."
            )
    errors.raise_if_any()


def _check_chat_input(errors: _Errors, path: tuple[str | int, ...], command: dict[str, Any], *, level: str) -> None:
    """Check a chat-input command, subcommand group or subcommand (``level``) and its options."""
    name = command.get("name", "")
    if not _COMMAND_NAME.match(name) or name != name.lower():
        errors.add((*path, "name"), "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME")
    errors.length((*path, "description"), command.get("description"), 100, 1)
    options = command.get("options") or []
    if len(options) > 25:
        errors.add((*path, "options"), "Must be 25 or fewer in length.")
    if len({option.get("type") in (1, 2) for option in options}) > 1:
        errors.add((*path, "options"), "Subcommands cannot be mixed with other options.")
    names: set[str] = set()
    optional_seen = False
    for j, option in enumerate(options):
        option_path = (*path, "options", j)
        kind = option.get("type")
        if option.get("name") in names:
            errors.add(
                (*option_path, "name"), "Option names must be unique", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS"
            )
        names.add(option.get("name"))
        if kind in (1, 2):
            if kind not in _NESTABLE[level]:
                errors.add((*option_path, "type"), "Subcommands cannot be nested this deep.")
            _check_chat_input(errors, option_path, option, level="group" if kind == 2 else "subcommand")
            continue
        _check_chat_input_option_leaf(errors, option_path, option)
        if option.get("required"):
            if optional_seen:
                errors.add(
                    (*option_path, "required"),
                    "Required options must be placed before non-required options",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                )
        else:
            optional_seen = True


def _check_chat_input_option_leaf(errors: _Errors, path: tuple[str | int, ...], option: dict[str, Any]) -> None:
    name = option.get("name", "")
    if not _COMMAND_NAME.match(name) or name != name.lower():
        errors.add((*path, "name"), "Option name is invalid", "APPLICATION_COMMAND_INVALID_NAME")
    errors.length((*path, "description"), option.get("description"), 100, 1)
    choices = option.get("choices") or []
    if len(choices) > 25:
        errors.add((*path, "choices"), "Must be 25 or fewer in length.")
    if choices and option.get("autocomplete"):
        errors.add((*path, "autocomplete"), "Autocomplete cannot be set with choices.")
    for k, choice in enumerate(choices):
        errors.length((*path, "choices", k, "name"), choice.get("name"), 100, 1)
        if isinstance(choice.get("value"), str):
            errors.length((*path, "choices", k, "value"), choice["value"], 100, 1)


def _command_size(command: dict[str, Any]) -> int:
    """Characters counted toward Discord's 4000-per-command limit: names, descriptions, choices."""
    size = len(command.get("name", "")) + len(command.get("description", "") or "")
    for option in command.get("options") or []:
        size += _command_size(option)
        for choice in option.get("choices") or []:
            size += len(choice.get("name", "")) + len(str(choice.get("value", "")))
    return size
