"""Moderation settings: the prompt filter's rules, personal-information detection, flag thresholds.

Every rule is parsed and compiled while the config loads, so a keyword that
cannot match, a regex that needs backtracking or an empty category stops the
bot at start with the YAML path of the bad entry, e.g.
``moderation.filter.categories.hate.regex[0]: pattern can backtrack catastrophically``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import phonenumbers
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from moderation.pii import PII_KINDS, PiiKind
from moderation.rules import compile_regex, parse_keyword
from moderation.warning_settings import WarningSettings

PII_CATEGORY = "personal_info"
"""The category personal information is reported under; not available for keyword rules."""
NEGATIVE_ALWAYS = ("hate",)
"""Categories a negative prompt is always checked for (personal information too); the others only when listed in
``negative_categories``, since a negative prompt names what to keep out of the picture ("nude, gore")."""
NSFW_NEVER = ("hate", PII_CATEGORY, "pii")
"""What an age-restricted channel never allows: hate and personal information (``pii``, its config section)."""
RULE_LISTS = ("keywords", "regex", "allow")


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (no "Value error, " prefix)."""
    return PydanticCustomError("invalid_rule", "{reason}", {"reason": message})


def _check_keyword(text: str) -> str:
    try:
        return parse_keyword(text).text
    except ValueError as exc:
        raise _invalid(str(exc)) from None


def _check_regex(pattern: str) -> str:
    try:
        compile_regex(pattern)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return pattern


def check_categories(names: Sequence[str], categories: Collection[str], *, nsfw: bool = False) -> tuple[str, ...]:
    """``names`` deduplicated if some, all ``categories`` (``nsfw``: none :data:`NSFW_NEVER`); else a ValueError."""
    allowed = ", ".join(name for name in categories if not (nsfw and name in NSFW_NEVER)) or "none"
    never = [name for name in names if nsfw and name in NSFW_NEVER]
    if never:
        raise ValueError(f"can never allow {', '.join(never)}: personal information and hate stay refused in "
                         f"age-restricted channels; it takes {allowed}")  # fmt: skip
    unknown = [name for name in names if name not in categories]
    if unknown or not names:
        raise ValueError(f"takes filter categories of the config: {allowed}; not {', '.join(unknown) or 'none'}")
    return tuple(dict.fromkeys(names))


KeywordRule = Annotated[str, AfterValidator(_check_keyword)]
RegexRule = Annotated[str, AfterValidator(_check_regex)]
CategoryName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


@cache
def shipped_rules() -> dict[str, Any]:
    """The packaged ``default_rules.yaml``."""
    return yaml.safe_load(resources.files("moderation").joinpath("default_rules.yaml").read_text("utf-8"))


class CategoryRules(BaseModel):
    """One category of the terms of service: what matches it, what is exempt, and what happens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: tuple[KeywordRule, ...] = ()
    """AutoMod keywords: ``word``, ``word*``, ``*word``, ``*word*``, phrases."""
    regex: tuple[RegexRule, ...] = ()
    """RE2 patterns, matched case-insensitively against the normalised prompt."""
    allow: tuple[KeywordRule, ...] = ()
    """Words and phrases exempt from this category's rules; they exempt only the text they cover."""
    action: Literal["block", "flag"] = "block"
    """``block`` refuses the prompt; ``flag`` lets it run and logs it for the moderators."""
    message: str = Field(default="This prompt isn't allowed on this server.", min_length=1, max_length=500)
    """Shown to the member when the category blocks a prompt."""

    @model_validator(mode="after")
    def _not_empty(self) -> CategoryRules:
        if not self.keywords and not self.regex:
            raise _invalid("a category needs at least one keyword or regex")
        return self


def _extend(shipped: Any, own: Any) -> Any:
    """An admin's category over the shipped one of that name; their entries come first, so errors keep their index."""
    if isinstance(own, BaseModel):
        own = own.model_dump()
    if not isinstance(shipped, Mapping) or not isinstance(own, Mapping):
        return own
    merged = {**shipped, **{key: value for key, value in own.items() if key not in RULE_LISTS}}
    for key in RULE_LISTS:
        mine = own.get(key, ())
        if isinstance(mine, list | tuple):
            merged[key] = [*mine, *(entry for entry in shipped.get(key, ()) if entry not in mine)]
        else:
            merged[key] = mine
    return merged


class PiiSettings(BaseModel):
    """The ``moderation.filter.pii:`` section: personal information in prompts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: tuple[PiiKind, ...] = PII_KINDS
    """Which kinds to look for; empty turns detection off."""
    action: Literal["block", "flag"] = "block"
    message: str = Field(
        default="Prompts can't contain personal information such as phone numbers, emails or addresses.",
        min_length=1,
        max_length=500,
    )
    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "BR")
    """Regions whose national phone formats are recognised (numbers with a ``+`` country code always are); the
    first region's formatted numbers count on their own, the others' after a word like "call" or "phone"."""
    allow: tuple[str, ...] = Field(default_factory=lambda: tuple(shipped_rules()[PII_CATEGORY]["allow"]))
    """Text that looks like personal information but is a public place, e.g. "10 Downing Street"."""

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise _invalid(f"unknown phone region {', '.join(unknown)} (use ISO codes like US, GB, DE)")
        return regions


class FilterSettings(BaseModel):
    """The ``moderation.filter:`` section: the terms-of-service prompt filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_rules: bool = True
    """Start from the shipped categories (sexual, hate, violence, trademark); the admin's extend them."""
    categories: dict[CategoryName, CategoryRules] = Field(default_factory=dict, validate_default=True)
    """After loading: the shipped categories (if ``default_rules``) merged with the admin's."""
    pii: PiiSettings = PiiSettings()
    negative_categories: tuple[CategoryName, ...] = ()
    """Categories the negative prompt is checked for besides personal information and :data:`NEGATIVE_ALWAYS`."""
    nsfw_prompt_categories: tuple[CategoryName, ...] = ()
    """Categories allowed in age-restricted (NSFW) channels unless a server sets its own; never :data:`NSFW_NEVER`."""

    @field_validator("categories", mode="before")
    @classmethod
    def _with_shipped(cls, value: Any, info: ValidationInfo) -> Any:
        if not info.data.get("default_rules", True) or not isinstance(value, Mapping):
            return value
        merged = dict(shipped_rules()["categories"])
        for name, own in value.items():
            merged[name] = _extend(merged.get(name), own)
        return merged

    @field_validator("categories")
    @classmethod
    def _reserved(cls, categories: dict[str, CategoryRules]) -> dict[str, CategoryRules]:
        if PII_CATEGORY in categories:
            raise _invalid(f"'{PII_CATEGORY}' is reserved for personal information; configure it under pii")
        return categories

    @field_validator("negative_categories", "nsfw_prompt_categories")
    @classmethod
    def _known_categories(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        categories = info.data.get("categories")
        if categories is None or not names:  # None: the categories had errors of their own, already reported
            return names
        try:
            return check_categories(names, categories, nsfw=info.field_name == "nsfw_prompt_categories")
        except ValueError as exc:
            raise _invalid(str(exc)) from None

    def negative_checks(self) -> frozenset[str]:
        """The categories a negative prompt is checked for (personal information is, always)."""
        return frozenset(NEGATIVE_ALWAYS).union(self.negative_categories)


class FlagSettings(BaseModel):
    """The ``moderation.flags:`` section: members flagging images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reasons: tuple[CategoryName, ...] = ("sexual", "hate", "violence", "trademark", PII_CATEGORY, "other")
    """What a member may give as the reason for a flag."""
    alert_score: PositiveFloat = 2.0
    """Score at which the moderators' channel is told."""
    hide_score: PositiveFloat = 3.0
    """Score at which the image is hidden until reviewed; never below ``alert_score``."""
    accuracy_bonus: NonNegativeFloat = 1.0
    """Extra weight for a flagger whose flags were all upheld (a flag weighs 1 + bonus x accuracy)."""
    accuracy_min_resolved: PositiveInt = 5
    """Resolved flags a member needs before their accuracy counts."""
    note_max_chars: PositiveInt = 300

    @field_validator("reasons")
    @classmethod
    def _some_reasons(cls, reasons: tuple[str, ...]) -> tuple[str, ...]:
        if not reasons:
            raise _invalid("give at least one reason members can pick")
        return tuple(dict.fromkeys(reasons))

    @field_validator("hide_score")
    @classmethod
    def _hide_after_alert(cls, hide: float, info: ValidationInfo) -> float:
        alert = info.data.get("alert_score")
        if alert is not None and hide < alert:
            raise _invalid(f"must not be below alert_score ({alert:g}): moderators hear of an image before it hides")
        return hide


class ModerationSettings(BaseModel):
    """The ``moderation:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: FilterSettings = FilterSettings()
    flags: FlagSettings = FlagSettings()
    warnings: WarningSettings = WarningSettings()
    prompt_log_retention_days: int = 30
    """How long blocked and flagged prompts are kept for the moderators (1 to 3650 days)."""

    @field_validator("prompt_log_retention_days")
    @classmethod
    def _retention_in_range(cls, days: int) -> int:
        if not 1 <= days <= 3650:
            raise _invalid("must be 1 to 3650 days")
        return days
