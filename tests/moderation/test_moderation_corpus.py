"""The shipped rules against a corpus of evasions that must be caught and innocent prompts that must pass.

Every case names the category it must land in (None: allowed untouched), so a
new false alarm fails as loudly as a new miss.
"""

from __future__ import annotations

import pytest

from moderation import ModerationSettings, PromptFilter

CAUGHT = [
    # plain, then one evasion trick at a time
    ("nude woman on a beach", "sexual"),
    ("NUDE portrait", "sexual"),
    ("nu\u200bde model", "sexual"),  # zero-width space
    ("na\u00adked statue", "sexual"),  # soft hyphen
    ("n\u200du\u200cd\u2060e", "sexual"),  # joiners, word joiner
    ("\ufeffporn\ufe0f", "sexual"),  # BOM, variation selector
    ("ｎｕｄｅ figure", "sexual"),  # fullwidth
    ("𝐧𝐚𝐤𝐞𝐝 elf", "sexual"),  # mathematical bold
    ("ⓝⓤⓓⓔ", "sexual"),  # circled letters
    ("ѕех scene", "sexual"),  # Cyrillic dze, ie, ha
    ("nսde painting", "sexual"),  # Armenian seh
    ("ΡΟRΝ", "sexual"),  # Greek rho, omicron, nu
    ("🇳🇺🇩🇪 selfie", "sexual"),  # regional indicators
    ("nüdé beach", "sexual"),  # accents
    ("n̸u̸d̸e̸", "sexual"),  # combining overlays
    ("(nude:1.4), masterpiece", "sexual"),  # prompt weight
    ("((naked)), best quality", "sexual"),  # emphasis
    ("[nude|clothed] woman", "sexual"),  # alternation
    ("{{hentai}} style", "sexual"),  # NovelAI braces
    ("n u d e girl", "sexual"),  # spaced out
    ("n.a.k.e.d", "sexual"),  # dotted
    ("p_o_r_n", "sexual"),  # underscores
    ("n - u - d - e", "sexual"),  # hyphens with spaces
    ("nu-de model", "sexual"),  # one mark splits the word
    ("po_rn", "sexual"),
    ("n(u)de model", "sexual"),  # a letter in brackets
    ("s[e]x scene", "sexual"),
    ("re-tard", "hate"),
    ("nuuuuude", "sexual"),  # stretched
    ("boooooobs", "sexual"),  # stretched double letter
    ("s3x", "sexual"),  # leetspeak
    ("p0rn", "sexual"),
    ("n4k3d", "sexual"),
    ("h3nt41", "sexual"),  # 1 read as i
    ("@n@l", "sexual"),  # symbols
    ("$exy", "sexual"),
    ("l0l1", "sexual"),  # 1 read as l and as i in one word
    ("n1pples", "sexual"),  # prefix rule through leetspeak
    ("2nude", "sexual"),  # a count glued to the word
    ("nsfw2024", "sexual"),  # a number glued after it
    ("n.u.d.3", "sexual"),  # spaced and leet at once
    ("((ｎ ｕ ｄ ｅ:1.3))", "sexual"),  # fullwidth, spaced, weighted
    ("naked eye view of a naked man", "sexual"),  # the allow-list covers only the first
    ("nude mickey mouse", "sexual"),  # a block wins over a flag
    ("n1gg3r", "hate"),
    ("sniggering at a n i g g e r", "hate"),  # allow-listed word next to the slur
    ("ѕieg heil", "hate"),
    ("h e i l hitler", "hate"),
    ("white   power rally", "hate"),
    ("f@gg0t", "hate"),
    ("the k.k.k. marching", "hate"),
    ("beheaded knight", "violence"),
    ("d3capitated body", "violence"),
    ("al gore standing in gore", "violence"),  # allow-listed name, then the word
    ("self-harm scars", "violence"),
    ("school_shooting", "violence"),
    ("r4pe scene", "violence"),
    ("Mickey Mouse at the beach", "trademark"),
    ("pokémon trainer", "trademark"),
    ("Coca-Cola bottle", "trademark"),
    ("d1sney castle", "trademark"),
    ("call me at (415) 555-0132", "personal_info"),
    ("text 4155550132 tonight", "personal_info"),
    ("+44 20 7946 0958", "personal_info"),
    ("jane.doe@example.com", "personal_info"),
    ("ssn 219-45-1234", "personal_info"),
    ("card 4111 1111 1111 1111", "personal_info"),
    ("the house at 123 Maple Street", "personal_info"),
    ("ｃａｌｌ ４１５-５５５-０１３２", "personal_info"),  # fullwidth digits
    # a one-letter word before or after letters spaced out
    ("a n u d e girl", "sexual"),
    ("draw a n u d e", "sexual"),
    ("p o r n i like", "sexual"),
    ("i g o r e scene", "violence"),
    ("a n 4 k 3 d elf", "sexual"),  # and leetspeak
    ("A S E X Y pose", "sexual"),
    # a banned word split by a space into two non-words
    ("nu de woman", "sexual"),
    ("na ked man", "sexual"),
    ("pe nis drawing", "sexual"),
    ("mutil ated body", "violence"),
    ("swas tika flag", "hate"),
    ("hello na ked nud e", "sexual"),  # the first split of several
    # look-alike letters that leetspeak tables miss
    ("nvde beach", "sexual"),  # v for u
    ("uagina", "sexual"),  # u for v
    ("rnilf", "sexual"),  # rn for m
    ("rnasturbating", "sexual"),
    ("vvhite power", "hate"),  # vv for w
    ("pvssy", "sexual"),
    ("bIowjob", "sexual"),  # capital I for l
    ("NlPPLE slip", "sexual"),  # small l for I
    ("vuIva", "sexual"),
    ("gvts spilling", "violence"),
    # separators mixed within one word
    ("n.u-d_e", "sexual"),
    ("p~o/r.n", "sexual"),
    ("g_o-r.e scene", "violence"),
    ("n-a.k_e-d", "sexual"),
    ("n. u-d e", "sexual"),  # marks, then a space
    # small capitals, stroked and struck-through letters
    ("ɴᴜᴅᴇ", "sexual"),
    ("ᴘᴏʀɴ", "sexual"),
    ("ꞥude", "sexual"),
    ("nʉde", "sexual"),
    ("p̶o̶r̶n̶", "sexual"),
    ("g̷o̷r̷e̷", "violence"),
    ("ɍape", "violence"),
    # national phone formats after a word, and a full address whose street alone is allowed
    ("call me on 07700 900123", "personal_info"),
    ("ruf mich an 030 12345678", "personal_info"),
    ("appelle-moi au 06 12 34 56 78", "personal_info"),
    ("whatsapp 98765 43210", "personal_info"),
    ("ligue (11) 91234-5678", "personal_info"),
    ("10 Downing Street, London SW1A 2AA", "personal_info"),
    # trademarks block, as the terms do
    ("Pikachu plush", "trademark"),
    ("batman logo", "trademark"),
]

INNOCENT = [
    "a bowl of grapes on a table",
    "drapes and curtains in a therapist office",
    "Scunthorpe town centre at dusk",
    "Penistone railway station",
    "Pornic harbour and Pornichet beach",
    "Essex and Middlesex countryside",
    "Sexsmith, Alberta in winter",
    "Intercourse, Pennsylvania, amish buggy",
    "a sextant on a ship deck",
    "graduated summa cum laude, oil painting",
    "cumulus clouds over the sea",
    "a kitchen-cum-dining room, Alan Cumming",
    "Offa's Dyke path",  # the allow entry covers the joined "offas dyke" too
    "an x-ray of a hand, rock'n'roll poster",
    "nu-disco album cover, Saint-Tropez",
    "a car with suicide doors",
    "oilseed rape field in May",
    "paint stripper on a workbench",
    "a bottomless pit",
    "the White Power Ranger action figure",
    "Shota Aizawa, anime style",
    "a sniggering goblin",
    "a niggardly old miser counting coins",
    "Al Gore giving a speech",
    "Gore-Tex jacket, hiking",
    "in the style of Edward Gorey",
    "a maine coon cat",
    "a raccoon in the forest",
    "Dick Van Dyke portrait",
    "a chink in the armor",
    "flame retardant suit",
    "rapeseed fields in bloom",
    "the hanged man tarot card",
    "naked eye view of the stars",
    "naked mole rat",
    "blue tits at a bird feeder",
    "pussy willow branches",
    "data analysis, analog synth",
    "assassin in classic armor, Cassandra",
    "Titus Andronicus stage play",
    "Nike of Samothrace statue",
    "a grape, a grapefruit and grapes",
    "seed 4155550132",
    "1999 vintage photo",
    "512x768, 4k, 8k, uhd",
    "1920x1080 wallpaper, 16:9",
    "ISBN 978-3-16-148410-0 book cover",
    "ISBN 0-306-40615-2",
    "steps 30, cfg 7.5, seed 1234567890",
    "1girl, 2boys, 3d render, 35mm film",
    "year 2077 cyberpunk city, 1080p",
    "f/1.8 aperture, 85mm lens",
    "a 5 ft tall robot",
    "route 66 diner",
    "area 51 hangar",
    "Abbey Road album cover",
    "Fifth Avenue at night",
    "10 Downing Street at night",
    "3 cats on main street",
    "a four lane highway",
    "Москва зимой",
    "東京の夜景",
    "🌸 cherry blossom 🌸",
    "U.S.A. flag waving",
    "wow!! amazing!!",
    "(masterpiece:1.2), [best quality], ((detailed))",
    # words that merely meet across a space, and innocent words spaced out
    "menu design for a cafe",
    "a menu, design sketch",
    "be head of the class",
    "an al fresco lunch",
    "a bat man costume party",
    "s p i c a star chart",
    "p i z z a oven",
    "a r t deco poster",
    # place names with a banned word inside
    "Scunthorpe United badge",
    "Sussex downs and Wessex saxons",
    "Analalava, Madagascar",
    "Clitheroe castle",
    "Coonamble, New South Wales",
    # look-alikes that are words of their own
    "burn marks on toast, corn field, turn left",
    "Illinois state flag, ILLUSTRATION",
    "I love Italy, Iceland and IMAX",
    "NVIDIA GPU render, vivid vvs diamonds",
    # numbers that are not phones, and famous streets without a postcode
    "photo from 06 12 2023",
    "ISO 3200 1/125 f/2.8",
    "221B Baker Street, London",
    "1999 2000 2001 2002",
]


@pytest.fixture(scope="module")
def prompt_filter() -> PromptFilter:
    return PromptFilter.from_settings(ModerationSettings())


def test_corpus_is_big_enough() -> None:
    assert len(CAUGHT) + len(INNOCENT) >= 150


@pytest.mark.parametrize(("prompt", "category"), CAUGHT)
def test_evasion_is_caught(prompt_filter: PromptFilter, prompt: str, category: str) -> None:
    verdict = prompt_filter.check(prompt)
    assert verdict.category == category, verdict
    assert verdict.action == prompt_filter.settings.categories.get(category, prompt_filter.settings.pii).action
    assert verdict.allowed == (verdict.action == "flag")
    start, end = verdict.span
    assert 0 <= start < end <= len(prompt)
    assert verdict.matched.strip(), "the span shows what the member typed"


@pytest.mark.parametrize("prompt", INNOCENT)
def test_innocent_prompt_passes(prompt_filter: PromptFilter, prompt: str) -> None:
    verdict = prompt_filter.check(prompt)
    assert (verdict.category, verdict.action, verdict.allowed) == (None, "allow", True), verdict


@pytest.mark.parametrize(
    ("prompt", "matched"),
    [
        ("a (nude:1.4) elf", "nude"),
        ("grapes, n u d e", "n u d e"),
        ("nu\u200bde", "nu\u200bde"),
        ("so nuuuuude", "nuuuuude"),
        ("al gore standing in gore", "gore"),
        ("naked eye view of a naked man", "naked"),
        ("call me at (415) 555-0132", "(415) 555-0132"),
    ],
)
def test_span_points_into_what_the_member_typed(prompt_filter: PromptFilter, prompt: str, matched: str) -> None:
    verdict = prompt_filter.check(prompt)
    assert verdict.matched == matched
    assert verdict.span[1] == prompt.rindex(matched) + len(matched)
