"""Contact masking before hire: a table of what is hidden and what must stay, plus properties."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mesteri.messaging.masking import MARKER, Masked, MaskKind, mask_contacts

M = MARKER
PHONE = frozenset({MaskKind.PHONE})
EMAIL = frozenset({MaskKind.EMAIL})
LINK = frozenset({MaskKind.LINK})
NONE: frozenset[MaskKind] = frozenset()

MASKED_CASES = [
    # Romanian mobiles, every separator, with and without country code
    pytest.param("Sună-mă la 0721 234 567 mâine", f"Sună-mă la {M} mâine", PHONE, id="ro-mobile"),
    pytest.param("Tel: +40 721 234 567.", f"Tel: {M}.", PHONE, id="ro-plus40"),
    pytest.param("0040 721 234 567", M, PHONE, id="ro-0040"),
    pytest.param("sunați 40 721 234 567", f"sunați {M}", PHONE, id="ro-40-no-plus"),
    pytest.param("+40 (0) 721 234 567", M, PHONE, id="ro-plus40-trunk-in-brackets"),
    pytest.param("0721.234.567", M, PHONE, id="ro-dots"),
    pytest.param("0721-234-567", M, PHONE, id="ro-dashes"),
    pytest.param("0721/234/567", M, PHONE, id="ro-slashes"),
    pytest.param("nr. meu (0721) 234 567!", f"nr. meu {M}!", PHONE, id="ro-parentheses"),
    pytest.param("0721234567", M, PHONE, id="ro-no-separators"),
    pytest.param("07.21.23.45.67", M, PHONE, id="ro-pairs-look-like-a-date"),
    pytest.param("721 234 567", M, PHONE, id="ro-mobile-without-0"),
    pytest.param("tel0721234567", f"tel{M}", PHONE, id="glued-to-a-word"),
    pytest.param(
        "\uff10\uff17\uff12\uff11\uff12\uff13\uff14\uff15\uff16\uff17", M, PHONE, id="full-width"
    ),
    pytest.param("0721\u200b234\u200b567", M, PHONE, id="zero-width-spaces"),
    # Romanian landlines
    pytest.param("Fix: 021 312 3456", f"Fix: {M}", PHONE, id="ro-bucharest"),
    pytest.param("0264 123 456", M, PHONE, id="ro-landline-02xx"),
    pytest.param("Tel. 0364 123 456", f"Tel. {M}", PHONE, id="ro-landline-03xx"),
    pytest.param("0256/123456", M, PHONE, id="ro-landline-slash"),
    pytest.param("+40-21-312-34-56", M, PHONE, id="ro-landline-international"),
    # Israeli numbers
    pytest.param("התקשר 054-123-4567", f"התקשר {M}", PHONE, id="il-mobile"),
    pytest.param("+972 54 123 4567", M, PHONE, id="il-plus972"),
    pytest.param("972541234567", M, PHONE, id="il-972-no-plus"),
    pytest.param("03-123-4567", M, PHONE, id="il-landline-03"),
    pytest.param("02-123-4567 או 04-123-4567", f"{M} או {M}", PHONE, id="il-landlines-02-04"),
    pytest.param("08-123-4567, 09-123-4567", f"{M}, {M}", PHONE, id="il-landlines-08-09"),
    pytest.param("+972-3-123-4567", M, PHONE, id="il-landline-international"),
    pytest.param("077-123-4567", M, PHONE, id="il-voip"),
    pytest.param("1-800-123-456", M, PHONE, id="il-toll-free"),
    # foreign numbers in international form, Hungarian mobile
    pytest.param("+49 151 12345678", M, PHONE, id="foreign-plus"),
    pytest.param("06 30 123 4567", M, PHONE, id="hu-mobile"),
    # digits one by one, words for digits, o for zero
    pytest.param("suna-ma: 0 7 2 1 - 2 3 4 - 5 6 7", f"suna-ma: {M}", PHONE, id="spaced-out"),
    pytest.param(
        "zero șapte doi unu doi trei patru cinci șase șapte", M, PHONE, id="ro-words-diacritics"
    ),
    pytest.param(
        "zero sapte doua unu doi trei patru cinci sase noua", M, PHONE, id="ro-words-plain"
    ),
    pytest.param("07 doi 1 trei 4 cinci 6 7 8", M, PHONE, id="words-mixed-with-digits"),
    pytest.param(
        "zero, seven, two, one, two, three, four, five, six, seven", M, PHONE, id="en-words-comma"
    ),
    pytest.param("oh-seven-two-one-two-three-four-five-six-seven", M, PHONE, id="en-oh-dashes"),
    pytest.param(
        "nulla hét kettő egy kettő három négy öt hat hét", M, PHONE, id="hu-words-diacritics"
    ),
    pytest.param("nulla het ketto egy ketto harom negy ot hat het", M, PHONE, id="hu-words-plain"),
    pytest.param("אפס חמש ארבע אחת שתיים שלוש ארבע חמש שש שבע", M, PHONE, id="he-words"),
    pytest.param("O721 234 567", M, PHONE, id="letter-o-for-zero"),
    pytest.param("o7 21 23 45 67", M, PHONE, id="letter-o-lower"),
    pytest.param("0721 234 567 8 lei", f"{M} 8 lei", PHONE, id="only-the-number-part"),
    pytest.param("la 0721 021 021. 1.200 lei", f"la {M}. 1.200 lei", PHONE, id="then-a-price"),
    pytest.param("0721 021 021 1200 lei", f"{M} 1200 lei", PHONE, id="leftmost-number-wins"),
    # e-mail addresses and their disguises
    pytest.param("scrie pe ana@gmail.com.", f"scrie pe {M}.", EMAIL, id="email"),
    pytest.param("ana.pop+x@firma.co.il", M, EMAIL, id="email-co-il"),
    pytest.param("scrie-mi pe ana @ gmail . com te rog", f"scrie-mi pe {M} te rog", EMAIL, id="sp"),
    pytest.param("ana(at)gmail(dot)com", M, EMAIL, id="email-at-dot-parentheses"),
    pytest.param("ana [at] gmail [dot] com", M, EMAIL, id="email-at-dot-square"),
    pytest.param("ana at gmail dot com", M, EMAIL, id="email-at-dot-words"),
    pytest.param("ana arond gmail punct com", M, EMAIL, id="email-arond-punct"),
    pytest.param("mail: ana la gmail punct com", f"mail: {M}", EMAIL, id="email-la-punct"),
    pytest.param("ana (at) firma (dot) ro", M, EMAIL, id="email-own-domain"),
    pytest.param("ana@gmail", M, EMAIL, id="email-without-tld"),
    pytest.param("ana a rond gmail punct com", M, EMAIL, id="email-a-rond"),
    pytest.param("ana שטרודל gmail נקודה com", M, EMAIL, id="email-hebrew-words"),
    pytest.param("ANA@GMAIL.COM", M, EMAIL, id="email-upper-case"),
    pytest.param("ana{at}gmail{dot}com", M, EMAIL, id="email-braces"),
    pytest.param("Vin la ana@gmail.com mâine", f"Vin la {M} mâine", EMAIL, id="email-after-la"),
    # links
    pytest.param("http://mesterul-ion.ro/contact", M, LINK, id="http"),
    pytest.param("Vezi https://mesterul-ion.ro/contact).", f"Vezi {M}).", LINK, id="https"),
    pytest.param("site: www.mesterul-ion.ro", f"site: {M}", LINK, id="www"),
    pytest.param("Vezi mesterul-ion.ro/contact.", f"Vezi {M}.", LINK, id="bare-with-path"),
    pytest.param("(vezi mesterul-ion.ro)", f"(vezi {M})", LINK, id="bare-in-brackets"),
    pytest.param("de la emag.ro", f"de la {M}", LINK, id="bare-after-la"),
    pytest.param("firma.co.il", M, LINK, id="bare-co-il"),
    pytest.param("wa.me/40721234567", M, LINK, id="whatsapp-link-with-number"),
    pytest.param("t.me/mesterion sau m.me/mesterion", f"{M} sau {M}", LINK, id="telegram-m-me"),
    pytest.param("facebook.com/mesterion, fb.com/ion", f"{M}, {M}", LINK, id="facebook"),
    pytest.param("instagram.com/mesterion", M, LINK, id="instagram"),
    pytest.param("tiktok.com/@mesterion", M, LINK, id="tiktok"),
    pytest.param("bit.ly/abc123", M, LINK, id="short-link"),
    pytest.param("Pe insta: @mesterul.ion", f"Pe insta: {M}", LINK, id="handle-with-network"),
    pytest.param("mesterion punct ro", M, LINK, id="domain-punct"),
    pytest.param("mesterion dot com", M, LINK, id="domain-dot-word"),
    pytest.param("MESTERION PUNCT RO", M, LINK, id="domain-punct-upper-case"),
    pytest.param("mesterion . ro", M, LINK, id="domain-spaced-dot"),
    pytest.param("www punct mesterion punct ro", M, LINK, id="www-punct"),
    pytest.param("mesterion (dot) com, mesterion[.]ro", f"{M}, {M}", LINK, id="domain-brackets"),
    # several contacts, overlaps
    pytest.param("0721234567, 0731234567", f"{M}, {M}", PHONE, id="two-phones"),
    pytest.param("0721 234 567 / 0731 234 567", f"{M} / {M}", PHONE, id="two-phones-slash"),
    pytest.param(
        "Suna la 0721 234 567 sau scrie pe ana@gmail.com, site mesterul-ion.ro",
        f"Suna la {M} sau scrie pe {M}, site {M}",
        PHONE | EMAIL | LINK,
        id="three-kinds",
    ),
    pytest.param("ana@gmail.com0721234567", M, EMAIL, id="overlapping-one-marker"),
    pytest.param("site.ro0721234567", M, LINK | PHONE, id="touching-one-marker"),
    pytest.param("wa.me/40721 234 567", M, LINK | PHONE, id="link-and-phone-overlap"),
]

UNMASKED_CASES = [
    pytest.param(text, id=text)
    for text in [
        "Prețul e 1.200 lei",
        "1200 RON",
        "2.500,00 lei",
        "350 €",
        "45 lei/mp",
        "₪1,200",
        "750.000.000 lei",
        "Total 12.500,00 + 2.375,00 TVA",
        "Variante: 1200, 1500, 1800 lei",
        "12.03.2026",
        "12/03/2026",
        "2026-03-12",
        "12 martie",
        "Vin pe 05.12.2026 10:00",
        "Între 12.03.2026 și 15.03.2026, 8-10 ore pe zi",
        "14:30",
        "ora 9.30",
        "Pot la 07.30, 08.30 sau 09.30",
        "07.30 08.30 09.30",
        "010101",
        "400001",
        "cod poștal 500123",
        "2024",
        "3 x 2,5 m",
        "120 mp",
        "2.5 m²",
        "Dimensiuni 120, 150, 200, 250 cm",
        "10-12 zile",
        "3 camere",
        "Zilele 7 8 9 10 11 12 13",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        "Str. Mihai Eminescu nr. 5, bl. 3, ap. 12",
        "sector 3",
        "CUI RO12345678",
        "J40/1234/2020",
        "Contract nr. 0601/2024/15",  # a landline's shape, but no such number exists
        "IBAN RO49 AAAA 1B31 0075 9384 0000",
        "ת.ז. 031234560",
        "S.R.L.",
        "etc. e.g. ex.",
        "Da.Mâine vin",
        "Da. eu vin, da.eu vin",
        "Am terminat.Info urmează",
        "Da. Ro e bine. Asta e tot. Info: vin mâine.",
        "Comanda #123456789 a fost livrată.",
        "plata in 3 rate: 1500, 1500, 2000",
        "ziua 1, 2, 3 demolare; ziua 4, 5 zidarie; ziua 6, 7, 8, 9 finisaje",
        "Lucrarea costă 12 500 lei, iar materialele 7 800 lei.",
        "3.14159",
        "ora 8 sau 9",
        "am doi copii și trei camere",
        "two bathrooms and one kitchen",
        "poza.jpg, oferta.pdf, contract.docx",
        'המחיר 1,200 ש"ח',
        "Am cont la gmail",
        "ne vedem @ acasa",
        "@Ion vin mâine",
        "a dot com company",
        "Am pus un punct comun",
    ]
]


@pytest.mark.parametrize(("text", "expected", "kinds"), MASKED_CASES)
def test_masks_contacts(text: str, expected: str, kinds: frozenset[MaskKind]) -> None:
    result = mask_contacts(text)
    assert result == Masked(expected, kinds)
    assert result.masked


@pytest.mark.parametrize("text", UNMASKED_CASES)
def test_leaves_ordinary_text_alone(text: str) -> None:
    result = mask_contacts(text)
    assert result == Masked(text, NONE)
    assert result.text is text  # the very same string
    assert not result.masked


def test_the_table_is_big_enough() -> None:
    assert len(MASKED_CASES) + len(UNMASKED_CASES) >= 45
    assert len(UNMASKED_CASES) >= 15


@pytest.mark.parametrize(("text", "expected", "kinds"), MASKED_CASES)
def test_masking_is_idempotent(text: str, expected: str, kinds: frozenset[MaskKind]) -> None:
    once = mask_contacts(text)
    twice = mask_contacts(once.text)
    assert twice == Masked(once.text, NONE)
    assert twice.text is once.text


@pytest.mark.parametrize(
    "tld",
    [
        *("ro", "com", "net", "org", "eu", "io", "co", "il", "co.il", "info", "biz", "me"),
        *("app", "site", "online", "shop", "md", "hu", "xyz", "store", "pro"),
    ],
)
def test_every_common_tld_is_a_link(tld: str) -> None:
    assert mask_contacts(f"vezi mesterul-ion.{tld} acum") == Masked(f"vezi {M} acum", LINK)
    assert mask_contacts(f"vezi mesterion punct {tld.replace('.', ' punct ')}") == Masked(
        f"vezi {M}", LINK
    )


def test_masked_and_kinds() -> None:
    assert not Masked("salut", frozenset()).masked
    assert Masked(M, frozenset({MaskKind.LINK})).masked
    both = mask_contacts("0721 234 567 sau ana@gmail.com")
    assert both.kinds == {MaskKind.PHONE, MaskKind.EMAIL}
    assert both.masked
    assert mask_contacts("bună ziua").kinds == frozenset()
    assert [k.value for k in MaskKind] == ["phone", "email", "link"]


def test_a_long_message_full_of_numbers() -> None:
    filler = "1.200 lei, 2.500,00 lei; 12.03.2026 ora 9.30; 120 mp; cod 400001; 3 x 2,5 m. "
    phones = [f"07{n:02d} {n:03d} {n:03d}" for n in range(20, 60)]
    text = "".join(f"{filler}Sună la {phone}. " for phone in phones)
    assert 3600 < len(text) <= 4000
    result = mask_contacts(text)
    assert result.text == f"{filler}Sună la {M}. " * len(phones)
    assert result.kinds == PHONE
    assert mask_contacts(filler * 48).text == filler * 48


# ---------------------------------------------------------------- properties

# A Romanian mobile left readable in the output: a whole digit run shaped like one.
_MOBILE_RUN = re.compile(r"(?<!\d)(?:0040|40|0)?7\d{8}(?!\d)")

_FRAGMENTS = st.sampled_from(
    [
        "0721234567",
        "721234567",
        "40721234567",
        "0040721234567",
        "07",
        "21",
        "234",
        "567",
        "0",
        "7",
        "doi",
        "șapte",
        "zero",
        " ",
        ".",
        "-",
        ",",
        "/",
        "(",
        ")",
        "+",
        ":",
        "o",
        "lei",
        "@",
        "ana",
        "gmail",
        "punct",
        "com",
        "site",
        ".ro",
        "co",
        "www.",
        "wa.me/",
        " at ",
        " la ",
        "(at)",
        " dot ",
        "12.03.2026",
        "9.30",
        "1.200",
        "•",
        M,
        "\n",
    ]
)
_MESSY_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=3)), max_size=30).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MESSY_TEXT)
def test_any_text_is_masked_without_errors_and_without_a_readable_mobile(text: str) -> None:
    result = mask_contacts(text)
    assert isinstance(result.text, str)
    assert result.masked == (result.text != text)
    assert _MOBILE_RUN.search(result.text) is None
    assert mask_contacts(result.text).text == result.text  # idempotent


_NUMBER_TEMPLATES = st.sampled_from(
    [
        *[("RO", "7", 8), ("RO", "21", 7), ("RO", "264", 6), ("RO", "31", 7)],
        *[("IL", "5", 8), ("IL", "3", 7), ("IL", "2", 7), ("IL", "77", 7)],
    ]
)
_FORMATS = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.RFC3966,
    ]
)


@settings(max_examples=300, deadline=None)
@given(_NUMBER_TEMPLATES, st.integers(min_value=0, max_value=10**8 - 1), _FORMATS)
def test_numbers_phonenumbers_knows_are_masked(
    template: tuple[str, str, int], rest: int, fmt: phonenumbers.PhoneNumberFormat
) -> None:
    """``phonenumbers`` as an oracle: whatever valid RO/IL number it formats, in any of its
    formats, is masked, and its matcher finds no number left in the output."""
    region, prefix, width = template
    number = phonenumbers.parse(prefix + str(rest % 10**width).zfill(width), region)
    assume(phonenumbers.is_valid_number(number))
    written = phonenumbers.format_number(number, fmt)
    scheme = "tel:" if written.startswith("tel:") else ""
    result = mask_contacts(f"Sună-mă: {written}, mulțumesc")
    assert result == Masked(f"Sună-mă: {scheme}{M}, mulțumesc", PHONE)
    for region_code in ("RO", "IL"):
        assert list(phonenumbers.PhoneNumberMatcher(result.text, region_code)) == []
