"""The ``data`` of each kind of interaction, built the way Discord's client builds it.

The client only lets a member send what a command, button or modal allows, so these builders
refuse (``InvalidInteraction``) what the client would refuse: unknown options, values of the wrong
type, outside ``min_value``/``max_value``/length bounds or not among the choices, missing required
options, disabled or missing buttons, unknown select options, empty required modal fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import InvalidInteraction
from .limits import SELECT_TYPES
from .messages import StoredMessage, attachment_payload, make_attachment
from .model import FakeChannel, FakeMember, FakeRole, FakeUser
from .records import Attachment, Message

FileInput = tuple[str, bytes]  # (filename, data) for an attachment option
_SCALAR_TYPES: dict[int, tuple[str, Callable[[Any], bool]]] = {
    3: ("string", lambda v: isinstance(v, str)),
    4: ("integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) <= 2**53),
    5: ("boolean", lambda v: isinstance(v, bool)),
    10: ("number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
}


class Resolved:
    """Collects the ``resolved`` objects (users, members, roles, channels, attachments, messages)."""

    def __init__(
        self,
        invoker: FakeMember | None,
        channel: FakeChannel,
        attachment_url: str,
        register: Callable[[Attachment], None],
    ) -> None:
        self._invoker = invoker
        self._channel = channel
        self._attachment_url = attachment_url
        self._register = register
        self.data: dict[str, dict[str, Any]] = {}

    def _put(self, kind: str, id: int, payload: dict[str, Any]) -> str:
        self.data.setdefault(kind, {})[str(id)] = payload
        return str(id)

    def user(self, value: FakeMember | FakeUser) -> str:
        if isinstance(value, FakeMember):
            self._put("members", value.id, value.payload(channel=self._channel, with_user=False))
            value = value.user
        return self._put("users", value.id, value.payload())

    def role(self, role: FakeRole) -> str:
        return self._put("roles", role.id, role.payload())

    def channel(self, channel: FakeChannel) -> str:
        payload = channel.payload()
        payload["permissions"] = str(self._invoker.permissions_in(channel).value if self._invoker else 0)
        return self._put("channels", channel.id, payload)

    def attachment(self, file: FileInput) -> str:
        filename, data = file
        attachment = make_attachment(filename, data, f"{self._attachment_url}/ephemeral")
        self._register(attachment)
        return self._put("attachments", attachment.id, {**attachment_payload(attachment), "ephemeral": True})

    def message(self, message: StoredMessage) -> str:
        return self._put("messages", message.id, message.payload())

    def option_value(self, definition: dict[str, Any], value: Any) -> str:
        """Resolve a user/channel/role/mentionable/attachment option value to its id."""
        kind = definition["type"]
        name = definition["name"]
        if kind == 6 and isinstance(value, FakeMember | FakeUser):
            return self.user(value)
        if kind == 8 and isinstance(value, FakeRole):
            return self.role(value)
        if kind == 9 and isinstance(value, FakeMember | FakeUser | FakeRole):
            return self.role(value) if isinstance(value, FakeRole) else self.user(value)
        if kind == 7 and isinstance(value, FakeChannel):
            allowed = definition.get("channel_types")
            if allowed and value.type.value not in allowed:
                raise InvalidInteraction(f"option {name!r} accepts channel types {allowed}, not {value.type.value}")
            return self.channel(value)
        if kind == 11 and isinstance(value, tuple):
            return self.attachment(value)
        raise InvalidInteraction(f"option {name!r} (type {kind}) cannot take {value!r}")


def chat_input(
    command: dict[str, Any],
    path: Sequence[str],
    options: Mapping[str, Any],
    resolved: Resolved,
    *,
    focused: str | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Data for a slash command (or, with ``focused``, its autocomplete) with subcommand ``path``."""
    level = command.get("options") or []
    chain = []
    for name in path:
        sub = next((o for o in level if o["name"] == name and o["type"] in (1, 2)), None)
        if sub is None:
            subs = [o["name"] for o in level if o["type"] in (1, 2)]
            raise InvalidInteraction(f"/{command['name']} has no subcommand {name!r} here; it has {subs}")
        chain.append(sub)
        level = sub.get("options") or []
    if any(o["type"] in (1, 2) for o in level):
        raise InvalidInteraction(
            f"/{' '.join([command['name'], *path])} needs a subcommand: {[o['name'] for o in level]}"
        )
    by_name = {o["name"]: o for o in level}
    unknown = set(options) - set(by_name)
    if unknown:
        raise InvalidInteraction(f"/{command['name']} has no option {sorted(unknown)}; it has {list(by_name)}")
    if focused is not None and not by_name.get(focused, {}).get("autocomplete"):
        raise InvalidInteraction(f"option {focused!r} of /{command['name']} has no autocomplete")
    missing = [o["name"] for o in level if o.get("required") and o["name"] not in options]
    if missing and focused is None:
        raise InvalidInteraction(f"/{command['name']} needs options {missing}")
    sent = []
    for name, value in options.items():
        definition = by_name[name]
        option: dict[str, Any] = {"name": name, "type": definition["type"]}
        if definition["type"] in _SCALAR_TYPES:
            if focused is None and strict:
                _check_scalar(definition, value)
            option["value"] = value
        else:
            option["value"] = resolved.option_value(definition, value)
        if name == focused:
            option["focused"] = True
        sent.append(option)
    for sub in reversed(chain):
        sent = [{"name": sub["name"], "type": sub["type"], "options": sent}]
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": sent}
    return _with_scope(data, command, resolved)


def _check_scalar(definition: dict[str, Any], value: Any) -> None:
    name = definition["name"]
    type_name, accepts = _SCALAR_TYPES[definition["type"]]
    if not accepts(value):
        raise InvalidInteraction(f"option {name!r} takes a {type_name}, not {value!r}")
    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise InvalidInteraction(f"option {name!r} must be one of {[c['value'] for c in choices]}, not {value!r}")
    if definition["type"] == 3:
        low, high, size = definition.get("min_length", 0), definition.get("max_length", 6000), len(value)
    elif definition["type"] in (4, 10):
        low, high, size = definition.get("min_value"), definition.get("max_value"), value
    else:
        return
    if (low is not None and size < low) or (high is not None and size > high):
        what = "length" if definition["type"] == 3 else "value"
        raise InvalidInteraction(f"option {name!r} {what} must be between {low} and {high}, not {size}")


def context_menu(
    command: dict[str, Any], target: StoredMessage | FakeMember | FakeUser, resolved: Resolved
) -> dict[str, Any]:
    """Data for a message (type 3) or user (type 2) context-menu command on ``target``."""
    if command["type"] == 3:
        if not isinstance(target, StoredMessage):
            raise InvalidInteraction(f"{command['name']!r} is a message command; target a message")
        if target.ephemeral:
            raise InvalidInteraction("apps cannot be used on ephemeral messages")
        target_id = resolved.message(target)
    elif isinstance(target, FakeMember | FakeUser):
        target_id = resolved.user(target)
    else:
        raise InvalidInteraction(f"{command['name']!r} is a user command; target a member")
    data = {"id": command["id"], "name": command["name"], "type": command["type"], "target_id": target_id}
    return _with_scope(data, command, resolved)


def _with_scope(data: dict[str, Any], command: dict[str, Any], resolved: Resolved) -> dict[str, Any]:
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    if resolved.data:
        data["resolved"] = resolved.data
    return data


def _clickable(message: Message, custom_id: str | None, label: str | None, types: set[int]) -> dict[str, Any]:
    try:
        component = message.component(custom_id, label=label)
    except KeyError as exc:
        raise InvalidInteraction(str(exc.args[0])) from None
    if component.get("type") not in types or "custom_id" not in component:
        raise InvalidInteraction(f"component {custom_id or label!r} cannot be used that way: {component}")
    if component.get("disabled"):
        raise InvalidInteraction(f"component {component['custom_id']!r} is disabled")
    return component


def button(message: Message, custom_id: str | None, label: str | None) -> dict[str, Any]:
    """Data for a click on a button of ``message`` (found by custom id or label)."""
    component = _clickable(message, custom_id, label, {2})
    return {"custom_id": component["custom_id"], "component_type": 2}


def select(message: Message, custom_id: str, values: Sequence[Any], resolved: Resolved) -> dict[str, Any]:
    """Data for choosing ``values`` in a select menu of ``message``."""
    component = _clickable(message, custom_id, None, SELECT_TYPES)
    return {"custom_id": custom_id, "component_type": component["type"], **_select_values(component, values, resolved)}


def _select_values(component: dict[str, Any], values: Sequence[Any], resolved: Resolved) -> dict[str, Any]:
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(values) <= high:
        raise InvalidInteraction(f"select {component['custom_id']!r} takes {low} to {high} values, not {len(values)}")
    if component["type"] == 3:
        offered = [option["value"] for option in component.get("options") or []]
        if any(value not in offered for value in values):
            raise InvalidInteraction(f"select {component['custom_id']!r} offers {offered}, not {list(values)}")
        return {"values": list(values)}
    definition = {"type": {5: 6, 6: 8, 7: 9, 8: 7}[component["type"]], "name": component["custom_id"]}
    ids = [resolved.option_value(definition, value) for value in values]
    return {"values": ids, "resolved": resolved.data}


def modal_submit(modal: dict[str, Any], values: Mapping[str, Any], resolved: Resolved) -> dict[str, Any]:
    """Data for submitting ``modal`` (as the bot sent it) with ``values`` by custom id.

    Text inputs take a str (default: the input's prefilled value), selects a list, checkboxes a bool.
    """
    remaining = dict(values)

    def fill(component: dict[str, Any]) -> dict[str, Any]:
        kind = component["type"]
        if kind == 1:
            return {"type": 1, "components": [fill(c) for c in component.get("components") or []]}
        if kind == 18:
            return {"type": 18, "component": fill(component["component"])}
        custom_id = component.get("custom_id")
        submitted: dict[str, Any] = {"type": kind}
        if "id" in component:
            submitted["id"] = component["id"]
        if custom_id is None:
            return submitted
        submitted["custom_id"] = custom_id
        given = remaining.pop(custom_id, None)
        if kind == 4:
            text = given if given is not None else component.get("value") or ""
            low, high = component.get("min_length", 0), component.get("max_length", 4000)
            if component.get("required", True) and not text:
                raise InvalidInteraction(f"text input {custom_id!r} is required")
            if text and not low <= len(text) <= high:
                raise InvalidInteraction(f"text input {custom_id!r} takes {low} to {high} characters, not {len(text)}")
            submitted["value"] = text
        elif kind in SELECT_TYPES:
            chosen = (
                [given]
                if isinstance(given, str | FakeMember | FakeUser | FakeRole | FakeChannel)
                else list(given or [])
            )
            if not chosen and not component.get("required", True):
                submitted["values"] = []
            else:
                submitted.update(_select_values(component, chosen, resolved))
        elif kind in (21, 23):  # radio group, checkbox
            submitted["value"] = given if given is not None else (False if kind == 23 else None)
        elif kind == 22:  # checkbox group
            submitted["values"] = list(given or [])
        return submitted

    components = [fill(c) for c in modal.get("components") or []]
    if remaining:
        raise InvalidInteraction(f"modal {modal.get('custom_id')!r} has no inputs {sorted(remaining)}")
    data: dict[str, Any] = {"custom_id": modal["custom_id"], "components": components}
    if resolved.data:
        data["resolved"] = resolved.data
    return data
