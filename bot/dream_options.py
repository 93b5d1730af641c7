"""``/dream``'s options resolved: each option is what the member gave, else their ``/settings`` default, else the
config's; then the size from an aspect ratio, and the style applied to the prompts.

The size: ``width``/``height`` given to ``/dream`` win over every aspect (a
missing side takes the member's default size, else 512); an ``aspect`` given
to ``/dream`` wins over a default size; giving both ``aspect`` and
``width``/``height`` is refused. A default aspect and a default size never
coexist (setting one clears the other).

Plain code, no Discord: the cog gathers what was given, this decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.aspect import aspect_size
from bot.preferences import Preferences
from bot.refusal import Refusal
from bot.scheduler.modes import Mode
from bot.styles import NO_STYLE, Style, unknown_style
from engine.types import GenerationParams, Limits, RequestError

T = TypeVar("T")
DEFAULT_MODEL = "default"
"""The model value that means the engine's default model."""


@dataclass(frozen=True)
class Asked:
    """What the member gave ``/dream``; None: not given."""

    prompt: str
    negative: str | None = None
    count: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    sampler: str | None = None
    aspect: str | None = None
    style: str | None = None
    mode: Mode | None = None
    model: str | None = None


@dataclass(frozen=True)
class Context:
    """What the defaults and checks depend on: the engine's limits, the member's tier, the config's sampler."""

    limits: Limits
    max_pixels: int
    """The member's tier's pixels per image."""
    default_count: int
    default_sampler: str


@dataclass(frozen=True)
class Resolved:
    """What the job is made of: the styled prompts, the image count, the parameters, the style's name, the mode."""

    prompt: str
    negative: str
    count: int
    params: GenerationParams
    style: str
    mode: Mode


def resolve(asked: Asked, prefs: Preferences, styles: Mapping[str, Style], context: Context) -> Resolved:
    """The options of one ``/dream``; refuses (naming the field) a mix of aspect and size, an aspect the limits
    cannot meet, an unknown style or model."""
    defaults = GenerationParams()
    width, height = _size(asked, prefs, context)
    model = "" if asked.model in (None, DEFAULT_MODEL) else asked.model
    if model and model not in context.limits.models:
        offered = ", ".join((DEFAULT_MODEL, *context.limits.models))
        raise RequestError("model", f"there is no model {model!r} here; the models are: {offered}")
    params = GenerationParams(
        width=width,
        height=height,
        steps=_first(asked.steps, prefs.steps, defaults.steps),
        guidance=_first(asked.guidance, prefs.guidance, defaults.guidance),
        sampler=_first(asked.sampler, prefs.sampler, context.default_sampler),
        model=model,
    )
    prompt, negative = asked.prompt, _first(asked.negative, prefs.negative, "")
    style = _style(asked, prefs, styles)
    if style is not None:
        prompt, negative = style.apply(prompt, negative)
    mode: Mode = _first(asked.mode, prefs.mode, "fast")  # type: ignore[assignment]
    count = _first(asked.count, prefs.count, context.default_count)
    return Resolved(prompt, negative, count, params, style.name if style else "", mode)


def _first(given: T | None, preferred: T | None, default: T) -> T:
    """Explicit option > preference > default."""
    if given is not None:
        return given
    return preferred if preferred is not None else default


def _size(asked: Asked, prefs: Preferences, context: Context) -> tuple[int, int]:
    sized = asked.width is not None or asked.height is not None
    if sized and asked.aspect is not None:
        raise RequestError("aspect", "give either aspect or width and height, not both")
    aspect = None if sized else _first(asked.aspect, prefs.aspect, None)
    if aspect is not None:
        try:
            return aspect_size(aspect, context.limits, context.max_pixels)
        except RequestError as exc:
            if asked.aspect is None:  # the member's default: say where it comes from
                raise RequestError("aspect", f"(your /settings default) {exc.message}") from None
            raise
    side = GenerationParams().width
    return _first(asked.width, prefs.width, side), _first(asked.height, prefs.height, side)


def _style(asked: Asked, prefs: Preferences, styles: Mapping[str, Style]) -> Style | None:
    name = _first(asked.style, prefs.style, NO_STYLE)
    if name == NO_STYLE:
        return None
    if name not in styles:
        if asked.style is None:
            raise Refusal(f"{unknown_style(name, styles)} It is your `/settings` default: set another, or reset it.")
        raise unknown_style(name, styles)
    return styles[name]
