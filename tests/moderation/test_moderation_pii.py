"""Personal-information detection: each kind, and the numbers that must not count."""

from __future__ import annotations

import pytest

from moderation.config import PiiSettings
from moderation.pii import PiiDetector, luhn_ok, ssn_is_valid


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(allow=["10 Downing Street"])


def kinds(detector: PiiDetector, text: str) -> list[tuple[str, str]]:
    return [(match.kind, text[match.start : match.end]) for match in detector.find(text)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call (415) 555-0132 now", "(415) 555-0132"),
        ("415-555-0132", "415-555-0132"),
        ("tel: 415.555.0132", "415.555.0132"),
        ("+1 415 555 0132", "+1 415 555 0132"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("call me 4155550132", "4155550132"),
        ("text 4155550132", "4155550132"),
    ],
)
def test_phone_numbers(detector: PiiDetector, text: str, found: str) -> None:
    assert kinds(detector, text) == [("phone", found)]


@pytest.mark.parametrize(
    "text",
    ["seed 4155550132", "4155550132", "a photo, 4155550132", "ISBN 0-306-40615-2", "year 2023-10-05", "1920x1080"],
)
def test_bare_digits_are_not_a_phone_number(detector: PiiDetector, text: str) -> None:
    assert kinds(detector, text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call me on 07700 900123", "07700 900123"),  # UK mobile
        ("ring 020 7946 0958", "020 7946 0958"),  # UK landline
        ("ruf mich an: 030 12345678", "030 12345678"),  # DE
        ("Handy 0151 23456789", "0151 23456789"),  # DE mobile
        ("appelle-moi au 06 12 34 56 78", "06 12 34 56 78"),  # FR
        ("whatsapp 98765 43210", "98765 43210"),  # IN
        ("call me 098765 43210", "098765 43210"),  # IN with the trunk 0
        ("ligue (11) 91234-5678", "(11) 91234-5678"),  # BR
        ("me liga 11 91234-5678", "11 91234-5678"),
    ],
)
def test_national_formats_of_the_default_regions_after_a_word(text: str, found: str) -> None:
    detector = PiiDetector(phone_regions=PiiSettings().phone_regions)
    assert kinds(detector, text) == [("phone", found)]


@pytest.mark.parametrize(
    "text", ["07700 900123", "photo from 06 12 2023", "06 12 34 56 78", "(11) 91234-5678", "1999 2000 2001 2002"]
)
def test_other_regions_national_formats_need_a_word(text: str) -> None:
    assert kinds(PiiDetector(phone_regions=PiiSettings().phone_regions), text) == []


def test_other_regions_can_be_configured() -> None:
    assert kinds(PiiDetector(["phone"], phone_regions=["GB"]), "ring 020 7946 0958") == [("phone", "020 7946 0958")]
    assert kinds(PiiDetector(["phone"], phone_regions=["US"]), "ring 020 7946 0958") == []


@pytest.mark.parametrize(
    ("area", "group", "serial", "valid"),
    [
        ("219", "45", "1234", True),
        ("000", "45", "1234", False),
        ("666", "45", "1234", False),
        ("900", "45", "1234", False),
        ("999", "45", "1234", False),
        ("219", "00", "1234", False),
        ("219", "45", "0000", False),
        ("078", "05", "1120", False),  # the Woolworth wallet card
        ("219", "09", "9999", False),  # printed in an SSA advertisement
    ],
)
def test_ssn_validity_rules(area: str, group: str, serial: str, valid: bool) -> None:
    assert ssn_is_valid(area, group, serial) is valid


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("219-45-1234", [("ssn", "219-45-1234")]),
        ("ssn 219 45 1234", [("ssn", "219 45 1234")]),
        ("my social security number is 219451234", [("ssn", "219451234")]),
        ("219451234", []),  # a bare 9-digit run needs context
        ("219 45 1234", []),
        ("219-45 1234", []),  # inconsistent delimiters
        ("666-45-1234", []),
        ("078-05-1120", []),
    ],
)
def test_social_security_numbers(detector: PiiDetector, text: str, found: list[tuple[str, str]]) -> None:
    assert kinds(detector, text) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("mail jane.doe+art@example.co.uk", "jane.doe+art@example.co.uk"),
        ("jane at example dot com", "jane at example dot com"),
        ("jane [at] example [dot] com", "jane [at] example [dot] com"),
    ],
)
def test_emails(detector: PiiDetector, text: str, found: str) -> None:
    assert kinds(detector, text) == [("email", found)]


@pytest.mark.parametrize("text", ["@artist style", "a cat at home", "meet at noon. Com"])
def test_not_emails(detector: PiiDetector, text: str) -> None:
    assert kinds(detector, text) == []


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert luhn_ok("9111111111111110")  # Luhn alone does not make a card number
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("4111 1111 1111 1111", [("card", "4111 1111 1111 1111")]),
        ("4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
        ("3782 822463 10005", [("card", "3782 822463 10005")]),  # Amex grouping
        ("4111111111111111", [("card", "4111111111111111")]),
        ("4111 1111 1111 1112", []),  # fails Luhn
        ("seed 4111111111111111", []),
        ("9111111111111110", []),  # Luhn-valid but no card issuer, written bare: a seed
        ("4111 1111-1111 1111", []),
        ("1 2 3 4 5 6 7 8 9 1 2 3 0", []),
    ],
)
def test_card_numbers(detector: PiiDetector, text: str, found: list[tuple[str, str]]) -> None:
    assert kinds(detector, text) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("she lives at 123 Maple Street", [("address", "123 Maple Street")]),
        ("42 Wallaby Way, Sydney", [("address", "42 Wallaby Way")]),
        ("1600 pennsylvania ave.", [("address", "1600 pennsylvania ave.")]),
        ("221B Baker Street", [("address", "221B Baker Street")]),
        ("10 Downing Street at night", []),  # on the allow-list: a public place
        ("Abbey Road album cover", []),  # a place, no house number
        ("Route 66 diner", []),
        ("3 cats on main street", []),  # the number counts cats
        ("a 4 lane highway", []),
    ],
)
def test_street_addresses(detector: PiiDetector, text: str, found: list[tuple[str, str]]) -> None:
    assert kinds(detector, text) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("10 Downing Street, London SW1A 2AA", "10 Downing Street, London SW1A 2AA"),
        ("742 Evergreen Terrace, Springfield, OR 97475", "742 Evergreen Terrace, Springfield, OR 97475"),
        ("1600 Pennsylvania Avenue NW, Washington, DC 20500", "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
        ("post it to 12 Elm Road, 10115 Berlin please", "12 Elm Road, 10115 Berlin"),
    ],
)
def test_a_full_address_is_caught_though_its_street_is_allowed(text: str, found: str) -> None:
    detector = PiiDetector(allow=PiiSettings().allow)
    assert kinds(detector, text) == [("address", found)]
    assert detector.find(text)[0].rule == "mailing address (street, city and postcode)"


@pytest.mark.parametrize(
    "text", ["10 Downing Street at night", "10 DOWNING STREET, London", "221B Baker Street, London", "4 privet drive"]
)
def test_an_allow_entry_covers_its_own_span(text: str) -> None:
    assert kinds(PiiDetector(allow=PiiSettings().allow), text) == []


def test_kinds_can_be_switched_off() -> None:
    assert PiiDetector(["email"]).find("call (415) 555-0132") == []
    assert PiiDetector([]).find("jane@example.com") == []
