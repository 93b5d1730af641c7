"""The filter's rule grammar, allow-lists, regexes, verdicts, live rule changes and JSON lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import FilterSettings, PromptFilter, RuleError, verdict_lines
from moderation.rules import parse_keyword, variants


def only(**categories: dict) -> PromptFilter:
    """A filter with just these categories (no shipped rules, no PII)."""
    return PromptFilter(
        FilterSettings.model_validate({"default_rules": False, "categories": categories, "pii": {"kinds": []}})
    )


@pytest.mark.parametrize(
    ("rule", "hits", "misses"),
    [
        ("cat", ["a cat", "cat!", "CAT"], ["cats", "concat", "scatter"]),
        ("cat*", ["cats", "catalog"], ["concat", "scat"]),
        ("*cat", ["concat", "bobcat"], ["cats", "scatter"]),
        ("*cat*", ["scatter", "cats", "concat"], ["c a"]),
        ("red panda", ["a red panda", "red, panda", "red_panda"], ["redpanda", "red pandas"]),
    ],
)
def test_automod_grammar(rule: str, hits: list[str], misses: list[str]) -> None:
    prompt_filter = only(test={"keywords": [rule]})
    for text in hits:
        assert prompt_filter.check(text).rule == rule, text
    for text in misses:
        assert prompt_filter.check(text).allowed and prompt_filter.check(text).rule is None, text


def test_allow_entry_suppresses_only_the_text_it_covers() -> None:
    prompt_filter = only(violence={"keywords": ["*rape*"], "allow": ["grape*", "therapist*"]})
    assert prompt_filter.check("grapes and a therapist").allowed
    verdict = prompt_filter.check("grapes rape")
    assert verdict.category == "violence"
    assert verdict.matched == "rape"
    assert prompt_filter.check("grapes, drape").category == "violence"  # "drape" is not allow-listed


def test_allow_list_belongs_to_its_category() -> None:
    prompt_filter = only(a={"keywords": ["*cum*"], "allow": ["cum laude"]}, b={"keywords": ["laude"]})
    assert prompt_filter.check("cum laude").category == "b"


def test_regex_runs_on_normalised_text_and_spans_map_back() -> None:
    prompt_filter = only(pii_like={"regex": [r"\bcode\s+\d{4}\b"]})
    verdict = prompt_filter.check("the CODE:  4242 please")
    assert (verdict.kind, verdict.rule, verdict.matched) == ("regex", r"\bcode\s+\d{4}\b", "CODE:  4242")


def test_regex_sees_capitalised_words_as_plain_letters() -> None:
    # A capital I that starts a word is a capital, not a look-alike of l: the regex reads "iran".
    assert only(places={"regex": [r"\biran\b"]}).check("Iran at dusk").category == "places"


def test_regex_is_linear_time() -> None:
    # Exponential under a backtracking engine; RE2 answers at once (the test timeout would catch a hang).
    prompt_filter = only(slow={"regex": [r"([a-z]+[a-z]+)+ \d"]})
    assert prompt_filter.check("ab" * 2500).allowed
    assert prompt_filter.check("ab" * 2500 + " 7").category == "slow"


def test_flag_action_lets_the_prompt_run() -> None:
    prompt_filter = only(brand={"keywords": ["acme"], "action": "flag", "message": "noted"})
    verdict = prompt_filter.check("acme rocket")
    assert (verdict.allowed, verdict.action, verdict.category, verdict.message) == (True, "flag", "brand", "noted")


def test_block_wins_over_flag_then_earliest_wins() -> None:
    prompt_filter = only(brand={"keywords": ["acme"], "action": "flag"}, bad={"keywords": ["boom", "bang"]})
    assert prompt_filter.check("acme boom").category == "bad"
    assert prompt_filter.check("bang acme boom").matched == "bang"


def test_stretched_double_letter_is_not_a_single_letter() -> None:
    prompt_filter = only(test={"keywords": ["boobs", "ass"]})
    assert prompt_filter.check("boooobs").category == "test"
    assert prompt_filter.check("asssss").category == "test"
    assert prompt_filter.check("bobs and as").allowed  # plain single letters are other words


def test_keyword_written_stretched_matches_only_stretched_text() -> None:
    prompt_filter = only(test={"keywords": ["xxx"]})
    assert prompt_filter.check("XXXX video").rule == "xxx"
    assert prompt_filter.check("x marks the spot, x at x").allowed


def test_one_reads_as_i_or_l() -> None:
    prompt_filter = only(test={"keywords": ["kill", "lick"]})
    assert prompt_filter.check("k1ll").rule == "kill"
    assert prompt_filter.check("1ick").rule == "lick"
    assert prompt_filter.check("111").allowed  # a number is not leetspeak


def test_variants_are_bounded_and_include_the_plain_spelling() -> None:
    spellings = dict(variants("illicit"))
    assert spellings["illicit"] == ()
    assert len(spellings) <= 64
    assert parse_keyword("*Nüde*").body == "nude"


def test_verdict_as_dict_has_exactly_the_check_prompt_fields() -> None:
    verdict = only(test={"keywords": ["boom"]}).check("a boom")
    assert verdict.as_dict() == {
        "prompt": "a boom",
        "allowed": False,
        "category": "test",
        "kind": "keyword",
        "rule": "boom",
        "span": [2, 6],
        "action": "block",
    }


def test_verdict_lines_stream_one_json_object_per_line() -> None:
    prompt_filter = only(test={"keywords": ["boom"]})
    lines = verdict_lines(prompt_filter, iter(["boom\n", "fine\r\n", "ünïcode\n"]))
    first = json.loads(next(lines))  # a generator: the first verdict comes before the rest is read
    assert (first["prompt"], first["allowed"]) == ("boom", False)
    rest = [json.loads(line) for line in lines]
    assert [(v["prompt"], v["allowed"], v["action"]) for v in rest] == [
        ("fine", True, "allow"),
        ("ünïcode", True, "allow"),
    ]


def test_with_rule_builds_a_new_filter() -> None:
    before = only(test={"keywords": ["boom"]})
    after = before.with_rule("test", "bang")
    assert before.check("bang").allowed
    assert after.check("bang").category == "test"
    added = after.with_rule("brand", "acme")
    assert added.check("acme").category == "brand"
    allowed = after.with_rule("test", "big bang", into="allow")
    assert allowed.check("big bang").allowed and allowed.check("bang").category == "test"


def test_without_rule_removes_and_drops_emptied_category() -> None:
    prompt_filter = only(test={"keywords": ["boom", "bang"]})
    assert prompt_filter.without_rule("test", "bang").check("bang").allowed
    emptied = prompt_filter.without_rule("test", "bang").without_rule("test", "boom")
    assert "test" not in emptied.settings.categories
    with pytest.raises(RuleError, match="no keywords entry"):
        prompt_filter.without_rule("test", "pow")


def test_live_changes_keep_shipped_rules_removable() -> None:
    shipped = PromptFilter(FilterSettings())
    assert shipped.check("nude").category == "sexual"
    removed = shipped.without_rule("sexual", "nude")
    assert removed.check("nude").allowed
    assert removed.check("naked").category == "sexual"


@pytest.mark.parametrize(
    ("rule", "into", "problem"),
    [
        ("wo*rd", "keywords", r"'\*' is allowed only"),
        (r"(\w)\1", "regex", "backtrack"),
        ("!!!", "keywords", "no letters"),
    ],
)
def test_bad_live_rule_is_refused_with_a_reason(rule: str, into: str, problem: str) -> None:
    with pytest.raises(RuleError, match=problem):
        only(test={"keywords": ["boom"]}).with_rule("test", rule, into=into)


SHIPPED = PromptFilter(FilterSettings())


def test_a_rebuild_shares_every_keyword_entry_with_the_last_build() -> None:
    # New entries would be new tracked objects, for every full garbage collection to walk while holding the GIL.
    settings = FilterSettings.model_validate({"categories": {"test": {"keywords": ["boom", "boom*", "*boom", "bang"]}}})
    first, again = ({spelling: entry for part in PromptFilter(settings)._keywords.parts()
                     for spelling, entry in part.items()} for _ in range(2))  # fmt: skip
    assert first.keys() == again.keys() and all(first[spelling] is again[spelling] for spelling in first)
    assert len(first["boom"][1]) == 3  # one spelling of three keywords: a merged entry, shared too


def test_allowed_categories_pass_but_never_hate_or_personal_information() -> None:
    nsfw = FilterSettings.model_validate({"negative_categories": ["sexual"]})
    prompt_filter = PromptFilter(nsfw)
    assert not prompt_filter.check("a nude statue").allowed
    assert prompt_filter.check("a nude statue", ["sexual"]).action == "allow"
    # The sexual match is let through; the hate match after it still blocks.
    verdict = prompt_filter.check("a nude statue, white power", ["sexual", "hate"])
    assert (verdict.allowed, verdict.category) == (False, "hate")
    assert prompt_filter.check("nude, call me on 07700 900123", ["sexual"]).category == "personal_info"
    prompt, negative = prompt_filter.check_request("a nude statue", "nude, blurry", ["sexual"])
    assert prompt.allowed and negative.allowed and negative.part == "negative"
    assert not prompt_filter.check_negative("nude, blurry").allowed


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.from_regex(r"[\w ,.:()\[\]|@$!1-9-]{0,80}"))
def test_any_text_gets_a_verdict_whose_span_is_inside_it(prompt: str) -> None:
    verdict = SHIPPED.check(prompt)
    assert verdict.allowed == (verdict.action != "block")
    if verdict.span is not None:
        assert 0 <= verdict.span[0] < verdict.span[1] <= len(prompt)
    else:
        assert verdict.action == "allow"
