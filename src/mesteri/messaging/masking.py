"""Contact masking: hide phone numbers, e-mail addresses and links in chat before a hire.

``mask_contacts(text)`` returns the text others see, with every contact replaced by
``MARKER``, and the kinds that were hidden. It is pure and deterministic (no I/O, no
database); every pattern is compiled once at import.

How it works
============

Three detectors propose spans of the original text: e-mails, links, phones. Spans that
overlap or touch are merged and each merged span becomes one ``MARKER``; everything outside
them (words, spaces, the punctuation around a contact) is kept as written. A span wholly
inside a span of an earlier detector (the ``gmail.com`` of an address, the digits of a
``wa.me/40…`` link) does not add its kind: ``kinds`` says what was hidden, once. Next to a
``MARKER`` every rule decides as next to a letter, so masking the output again finds nothing
new (idempotence).

Speed: Python's ``re`` pays for every position a pattern is tried at, so no detector scans
the text with its full pattern. Each finds cheap *anchors* first with patterns that start
with a literal or a character set (which ``re`` skips to in C): digit runs and number
words; ``@`` and the words for it; ``.`` + a known TLD, ``www``, ``://`` and the words for a
dot. The full pattern is then tried only at those anchors. Case is handled by matching on
a lower-cased copy of the text of the same length (``_lower``), not by ``re.IGNORECASE``
(which turns off those fast paths). A typical message costs tens of microseconds; 4,000
characters, even of digits and separators only, a few milliseconds at most.

Phones
------

1. *Tokens*: digit runs (any Unicode decimal digits, so full-width digits count), the
   letter ``o``/``O`` glued to digits (a zero typed as a letter), and digits written as
   words in Romanian, English, Hungarian and Hebrew (``_DIGIT_WORDS``; with or without
   diacritics, any case).
2. *Runs*: consecutive tokens joined by at most four separator characters (``_GAP``):
   spaces, ``.``, ``-`` and dashes, ``/``, ``\\``, brackets, ``,``, ``_``, ``*``, ``|`` and
   zero-width spaces. A colon (``14:30``), a full stop with a space after it (``… 567.
   1.200 lei``), a letter (``3 x 2,5``), any other word, or a protected number (below)
   ends a run.
3. *Candidates*: within a run, the digits of tokens ``i..j`` (whole tokens only: a number
   is never cut inside a group of digits) are tried against the shapes below; the
   leftmost start wins with its longest match, and the search goes on after it (a group
   inside a number found does not start another). The thresholds are the real lengths of
   numbers:

   - *Mobiles*, shape alone: ``07x xxx xxxx`` (RO mobile, IL VoIP), ``05x-xxx-xxxx`` (IL),
     after ``40``/``0040``/``+40`` or ``972``/``00972``/``+972`` (an optional ``(0)``
     after the country code), ``7xx xxx xxx`` (RO without its 0), HU ``06 30 …``.
   - *Landlines, toll-free, premium*: RO ``0[2-689]`` + 8 digits (10 in all), IL
     ``0[2-489]`` + 7 (9 in all), IL ``1-800``/``1-700``, with or without country code;
     the national number must also be one ``phonenumbers.is_valid_number`` accepts
     (checked against the library's own metadata patterns, compiled once).
   - *Any country*: ``+`` or ``00``, then 8-15 digits that ``phonenumbers`` accepts.

   Without a ``+``, nine digits (an Israeli landline with its 0, a Romanian mobile
   without it) is the shortest number we mask. Prices, postal codes (6 digits), years,
   counts and CUIs (up to 10 digits, but not starting like a phone) are shorter or shaped
   otherwise.
   Landlines are validated because ``0[23]`` + 8 digits is also what a date next to other
   numbers can make; mobiles are not, because ``phonenumbers`` rejects numbers people do
   write (``054-123-4567``), and ten digits starting with ``07``/``05`` are a phone in chat.
4. *Guards against false positives*:

   - a comma between groups of several digits makes a list or a decimal (``09.30, 10.30``;
     ``12.500,00 + 2.375,00``), never a phone: commas join single digits only
     (``zero, șapte, doi, …``);
   - ``7xx xxx xxx`` without its 0 counts in one piece, in two to four groups or digit by
     digit, and not next to a currency (``750.000.000 lei``, ``Zilele 7 8 9 10 11 12``);
   - dates (``12.03.2026``, ``2026-03-12``), round clock times (``9.30``, ``14:45``),
     trade register numbers (``J40/1234/2020``), IBANs (mod-97 checked) and Israeli ids
     after ``ת.ז.``/``ח.פ.``/``ע.מ.`` (check digit) are protected and break runs.

``phonenumbers.PhoneNumberMatcher`` takes ~0.4 ms for a short message, so it is not used
here; the tests use it as an oracle.

E-mails
-------

``local AT domain``. AT is ``@``, ``(at)``/``[at]``/``{at}``/``<at>``, ``arond``/``a rond``
(Romanian) or ``שטרודל`` (Hebrew): then any domain, with or without a TLD (``ana@gmail``),
except that a spaced ``" @ "`` without a TLD needs a known mail provider (``ne vedem @
acasa`` is not an address). ``at`` and ``la`` are everyday words, so with them the domain
must be a known mail provider (``_MAIL_PROVIDERS``) *and* end in a TLD (``ana la gmail punct
com``). A dot may be ``.``, ``(dot)``, ``[.]``, ``dot``, ``punct``, ``pct`` or ``נקודה``;
a dot with a space before it (``" . "``, ``" .ro"``; a full stop has none) counts only
before a TLD that is not also a word (``_SAFE_TLDS``).

Links
-----

``http(s)://…``, ``ftp://…``, ``www.…``; bare domains ending in a known TLD (``_TLDS``:
common generic and nearby country TLDs, not file extensions such as ``.jpg``/``.pdf`` and not
TLDs that are everyday words such as ``.de``/``.la``/``.nu``), with an optional port and
path; ``@handles`` when the message names a social network; domains with obfuscated dots
(``mesterion punct ro``, ``mesterion (dot) com``). A bare TLD must be all lower or all upper
case (``terminat.Info`` is a missing space, not a link), and a TLD that is also a word
(``.eu``, ``.me``…) needs a label of three characters or a path (``da.eu vin`` stays).
Trailing punctuation and unbalanced closing brackets stay outside the link.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

import phonenumbers

from mesteri.kit.business_ids import valid_israeli_company_number

__all__ = ["MARKER", "MaskKind", "Masked", "mask_contacts"]

MARKER: Final = "•••"
_BULLET: Final = "\u2022"  # MARKER is made of it


class MaskKind(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    LINK = "link"


@dataclass(frozen=True)
class Masked:
    text: str  # the text with every hidden part replaced by MARKER
    kinds: frozenset[MaskKind]  # what was hidden (empty: nothing)

    @property
    def masked(self) -> bool:
        """True when anything was hidden."""
        return bool(self.kinds)


class _Span(NamedTuple):
    start: int
    end: int
    kind: MaskKind


# Earlier kinds win when one span lies inside another (an e-mail's domain is not a link).
_PRIORITY: Final = {MaskKind.EMAIL: 0, MaskKind.LINK: 1, MaskKind.PHONE: 2}


def mask_contacts(text: str) -> Masked:
    """Replace every phone, e-mail and link in ``text`` with ``MARKER``; say what was hidden.

    A text without contacts comes back as the very same string object.
    """
    low = _lower(text)
    spans = _email_spans(text, low)
    spans += _link_spans(text, low, spans)
    spans += _phone_spans(text, low)
    spans = [s for s in spans if s.end > s.start]
    if not spans:
        return Masked(text, frozenset())
    spans.sort()
    clusters: list[list[_Span]] = []  # overlapping or touching spans: one MARKER each
    cluster_end = -1
    for span in spans:
        if clusters and span.start <= cluster_end:
            clusters[-1].append(span)
            cluster_end = max(cluster_end, span.end)
        else:
            clusters.append([span])
            cluster_end = span.end
    kinds: set[MaskKind] = set()
    pieces: list[str] = []
    cursor = 0
    for cluster in clusters:
        pieces += [text[cursor : cluster[0].start], MARKER]
        cursor = max(s.end for s in cluster)
        kinds.update(_shown_kinds(cluster))
    pieces.append(text[cursor:])
    return Masked("".join(pieces), frozenset(kinds))


def _shown_kinds(cluster: list[_Span]) -> set[MaskKind]:
    """Kinds of the spans not wholly inside a span of an earlier kind (``gmail.com`` of an
    e-mail address is not a link of its own)."""
    kinds: set[MaskKind] = set()
    earlier: list[_Span] = []
    for kind in sorted({s.kind for s in cluster}, key=_PRIORITY.__getitem__):
        cover = _Cover(earlier)
        mine = [s for s in cluster if s.kind is kind]
        if any(not cover.holds(s.start, s.end) for s in mine):
            kinds.add(kind)
        earlier += mine
    return kinds


# ---------------------------------------------------------------- case and characters


def _lower(text: str) -> str:
    """``text`` in lower case, one character for one, so offsets stay valid in both."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)  # "İ" and the like


def _letterish(char: str) -> bool:
    """A letter, or the bullet of MARKER (next to a marker, decide as next to a word)."""
    return char.isalpha() or char == _BULLET


def _before(text: str, index: int) -> str:
    return text[index - 1] if index > 0 else " "


def _after(text: str, index: int) -> str:
    return text[index] if index < len(text) else " "


# ---------------------------------------------------------------- phones: tokens

# Lower case; with and without diacritics (ș and ş are both in use for Romanian s-comma).
_DIGIT_WORDS: Final[dict[str, str]] = {
    # Romanian
    "zero": "0",
    "unu": "1",
    "una": "1",
    "doi": "2",
    "două": "2",
    "doua": "2",
    "trei": "3",
    "patru": "4",
    "cinci": "5",
    "șase": "6",
    "şase": "6",
    "sase": "6",
    "șapte": "7",
    "şapte": "7",
    "sapte": "7",
    "opt": "8",
    "nouă": "9",
    "noua": "9",
    # English; "oh" and a lone "o" are zeros
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    # Hungarian
    "nulla": "0",
    "egy": "1",
    "kettő": "2",
    "kettö": "2",
    "ketto": "2",
    "két": "2",
    "ket": "2",
    "három": "3",
    "harom": "3",
    "négy": "4",
    "negy": "4",
    "öt": "5",
    "ot": "5",
    "hat": "6",
    "hét": "7",
    "het": "7",
    "nyolc": "8",
    "kilenc": "9",
    # Hebrew, feminine and masculine forms
    "אפס": "0",
    "אחת": "1",
    "אחד": "1",
    "שתיים": "2",
    "שתים": "2",
    "שניים": "2",
    "שנים": "2",
    "שלוש": "3",
    "שלש": "3",
    "שלושה": "3",
    "ארבע": "4",
    "ארבעה": "4",
    "חמש": "5",
    "חמישה": "5",
    "שש": "6",
    "שישה": "6",
    "שבע": "7",
    "שבעה": "7",
    "שמונה": "8",
    "תשע": "9",
    "תשעה": "9",
}


def _alternation(words: Iterable[str]) -> str:
    """``a(?:bc|b)|x(?:y|)``: every branch starts with a literal, so ``re`` skips ahead."""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
    return "|".join(
        re.escape(first)
        + "(?:"
        + "|".join(map(re.escape, sorted(rests, key=lambda r: (-len(r), r))))
        + ")"
        for first, rests in sorted(by_first.items())
    )


_DIGIT_RUN = re.compile(r"[\d]\d*")
_DIGIT_WORD = re.compile(rf"{_alternation(_DIGIT_WORDS)}(?![^\W\d_]|{_BULLET})")
# What may stand between two groups of one number: at most four separator characters.
_GAP = re.compile(r"[\s.\-\u2010-\u2015/\\()\[\]{},_*|\u200b-\u200d\u2060\ufeff]{0,4}")
_FULL_STOP = re.compile(r"\.\s")  # right after a group: the sentence ends ("567. 1.200 lei")


# A token: (start, end, its digits in ASCII). Plain tuples: a long message has thousands.
_Token = tuple[int, int, str]


def _tokens(text: str, low: str) -> tuple[list[_Token], list[_Token]]:
    """All digit tokens in order, and the digit runs alone (where protections start)."""
    if "o" not in low and text.isascii():  # no letter o, no other digits: one pass in C
        runs = [(m.start(), m.end(), m.group()) for m in _DIGIT_RUN.finditer(text)]
        tokens = list(runs)
    else:
        tokens, runs = _tokens_with_zeros(text)
    taken = {t[0] for t in tokens}
    words = False
    for match in _DIGIT_WORD.finditer(low):
        start = match.start()
        if start in taken or _letterish(_before(text, start)):
            continue
        tokens.append((start, match.end(), _DIGIT_WORDS[match.group()]))
        words = True
    if words:
        tokens.sort()
    return tokens, runs


def _tokens_with_zeros(text: str) -> tuple[list[_Token], list[_Token]]:
    """Digit runs in ASCII, and o/O glued to them (not ending or starting a word) as zeros."""
    size = len(text)
    runs: list[_Token] = []
    tokens: list[_Token] = []
    last_end = 0
    for match in _DIGIT_RUN.finditer(text):
        start, end = match.span()
        group = match.group()
        left = start
        while left > last_end and text[left - 1] in "oO":
            left -= 1
        if left < start and not _letterish(_before(text, left)):
            tokens.append((left, start, "0" * (start - left)))
        if not group.isascii():
            group = "".join(str(unicodedata.decimal(c)) for c in group)
        run = (start, end, group)
        runs.append(run)
        tokens.append(run)
        right = end
        while right < size and text[right] in "oO":
            right += 1
        if right > end and not _letterish(_after(text, right)):
            tokens.append((end, right, "0" * (right - end)))
            end = right
        last_end = end
    return tokens, runs


# ---------------------------------------------------------------- phones: protected numbers

# Tried only where a digit run starts (or just before it, for J40/… and IBANs).
_DATE_OR_TIME = re.compile(
    r"""
    (?<!\d)(?<!\d[./-])
    (?:
    # d.m.y, d/m/y, d-m-y (one separator throughout) and y-m-d, not one group of a longer
    # chain (07.12.23.45.67 is a phone, not a date)
        (?:0?[1-9]|[12]\d|3[01])(?P<s1>[./-])(?:0?[1-9]|1[0-2])(?P=s1)(?:19|20)?\d{2}
      | (?:19|20)\d{2}(?P<s2>[./-])(?:0?[1-9]|1[0-2])(?P=s2)(?:0?[1-9]|[12]\d|3[01])
    )
    (?!\d)(?![./-]\d)
    # round clock times: 9.30, 07.45, 14:00
    | (?<![\d.,:])(?:[01]?\d|2[0-3])[.:](?:00|15|30|45)(?!\d)(?![.,:]\d)
    """,
    re.VERBOSE,
)
_DATE_SEPARATORS: Final = frozenset("./-:")  # what follows the first group of a date or time
_TRADE_REGISTER = re.compile(r"J\d{1,2}/\d{1,6}/(?:19|20)\d{2}(?!\d)")
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_IBAN_START = re.compile(r"[A-Z][A-Z]\d\d")
_IL_ID_WORD = re.compile(r"ת\.ז|ת\"ז|ח\.פ|ח\"פ|ע\.מ|ע\"מ")
_IL_ID_BEFORE = re.compile(r"(?:ת\.ז\.?|ת\"ז|ח\.פ\.?|ח\"פ|ע\.מ\.?|ע\"מ)\s*:?\s*\Z")


def _iban_ok(candidate: str) -> bool:
    code = candidate.replace(" ", "")
    rotated = code[4:] + code[:4]
    return int("".join(str(int(c, 36)) for c in rotated)) % 97 == 1


def _protected(text: str, runs: list[_Token]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    j_ids = "J" in text
    ibans = _IBAN_START.search(text) is not None
    il_ids = _IL_ID_WORD.search(text) is not None
    for start, end, digits in runs:
        if text[end : end + 1] in _DATE_SEPARATORS and (match := _DATE_OR_TIME.match(text, start)):
            spans.append(match.span())
        if (
            j_ids
            and text[start - 1 : start] == "J"
            and not text[start - 2 : start - 1].isalnum()
            and (match := _TRADE_REGISTER.match(text, start - 1))
        ):
            spans.append(match.span())
        if (
            ibans
            and start >= 2
            and text[start - 2 : start].isupper()
            and not text[start - 3 : start - 2].isalnum()
            and (match := _IBAN.match(text, start - 2))
            and _iban_ok(match.group())
        ):
            spans.append(match.span())
        if (
            il_ids
            and len(digits) == 9
            and valid_israeli_company_number(digits)
            and _IL_ID_BEFORE.search(text, max(0, start - 10), start)
        ):
            spans.append((start, end))
    spans.sort()
    return spans


# ---------------------------------------------------------------- phones: shapes

# Shape alone suffices: mobiles (and Israeli VoIP 07x), trunk 0 or country code, (0) allowed.
_MOBILE = re.compile(
    r"(?:(?:00)?400?|0)?7\d{8}"  # RO 07xx xxx xxx, +40 7xx, 0040 7xx, 40 7xx, 7xx xxx xxx
    r"|(?:(?:00)?9720?|0)5\d{8}"  # IL 05x-xxx-xxxx, +972 5x
    r"|(?:00)?9720?7\d{8}"  # IL VoIP +972 7x (07x is in the first line)
    r"|06(?:20|30|31|50|70)\d{7}"  # HU mobile with its trunk 06
)
# Landlines, toll-free and premium: shape plus phonenumbers validation (group 1 = national).
_RO_FIXED = re.compile(r"(?:(?:00)?400?|0)([2-689]\d{8})")
_IL_FIXED = re.compile(r"(?:(?:00)?9720?|0)([2-489]\d{7})")
_IL_SPECIAL = re.compile(r"1[78]00\d{6}")  # 1-800-xxx-xxx, 1-700-xxx-xxx

# (first two digits, length) of every shape above, to skip the patterns for most candidates.
_SHAPE_KEYS: Final = frozenset(
    [(f"7{d}", 9) for d in "0123456789"]
    + [(p, 9) for p in ("02", "03", "04", "08", "09")]
    + [(f"0{d}", 10) for d in "23456789"]
    + [("17", 10), ("18", 10)]
    + [(p, n) for p in ("40", "97") for n in (11, 12, 13)]
    + [("06", 11)]
    + [("00", n) for n in range(10, 18)]
)


_SIZES: Final[dict[str, tuple[int, ...]]] = {
    prefix: tuple(sorted((n for p, n in _SHAPE_KEYS if p == prefix), reverse=True))
    for prefix in {p for p, _ in _SHAPE_KEYS}
}
_ANY_SIZES: Final = tuple(range(17, 7, -1))  # after a "+": any country, E.164 lengths


@lru_cache(maxsize=4096)
def _valid(e164_digits: str) -> bool:
    try:
        number = phonenumbers.parse("+" + e164_digits)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _region_pattern(region: str) -> re.Pattern[str]:
    """The national numbers ``phonenumbers.is_valid_number`` accepts for ``region``, from the
    library's own metadata, compiled once: parsing costs ~30 µs a number, this ~1 µs."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert meta is not None
    descs = (
        *(meta.fixed_line, meta.mobile, meta.toll_free, meta.premium_rate, meta.shared_cost),
        *(meta.personal_number, meta.voip, meta.pager, meta.uan, meta.voicemail),
    )
    patterns = [d.national_number_pattern for d in descs if d and d.national_number_pattern]
    return re.compile("(?:" + "|".join(patterns) + ")")


_RO_VALID: Final = _region_pattern("RO")
_IL_VALID: Final = _region_pattern("IL")


def _is_phone(digits: str, plus: bool) -> bool:
    """Do these digits (of whole tokens) make a phone number? See the module docstring."""
    if _MOBILE.fullmatch(digits):
        return True
    if m := _RO_FIXED.fullmatch(digits):
        return _RO_VALID.fullmatch(m[1]) is not None
    if m := _IL_FIXED.fullmatch(digits):
        return _IL_VALID.fullmatch(m[1]) is not None
    if _IL_SPECIAL.fullmatch(digits):
        return _IL_VALID.fullmatch(digits) is not None
    if plus or digits.startswith("00"):
        core = digits[2:] if digits.startswith("00") else digits
        return 8 <= len(core) <= 15 and _valid(core)
    return False


_CURRENCY_AFTER = re.compile(r"\s*(?:lei|ron|eur|euro|€|\$|usd|₪|ש\"ח|nis|ils|huf|ft)(?!\w)")
_CURRENCY_BEFORE = re.compile(r"(?:€|\$|₪)\s*\Z")


def _bare_ok(text: str, low: str, tokens: list[_Token]) -> bool:
    """``7xx xxx xxx`` (no 0) is nine digits, like an amount or a list of numbers."""
    if len(tokens) == 1:
        return True
    if len(tokens) > 4 and any(len(t[2]) > 1 for t in tokens):
        return False
    start, end = tokens[0][0], tokens[-1][1]
    return not (
        _CURRENCY_AFTER.match(low, end) or _CURRENCY_BEFORE.search(text, max(0, start - 3), start)
    )


def _runs(
    text: str, tokens: list[_Token], protected: list[tuple[int, int]]
) -> Iterator[list[_Token]]:
    """Maximal sequences of tokens joined by separators, outside protected numbers."""
    p = 0
    run: list[_Token] = []
    for token in tokens:
        start, end, _ = token
        while p < len(protected) and protected[p][1] <= start:
            p += 1
        if p < len(protected) and protected[p][0] < end:
            if run:
                yield run
                run = []
            continue
        if run and (
            not _GAP.fullmatch(text, run[-1][1], start) or _FULL_STOP.match(text, run[-1][1])
        ):
            yield run
            run = []
        run.append(token)
    if run:
        yield run


def _phone_spans(text: str, low: str) -> list[_Span]:
    tokens, digit_runs = _tokens(text, low)
    if len(tokens) < 2 and not any(len(t[2]) >= 8 for t in tokens):
        return []
    spans: list[_Span] = []
    for run in _runs(text, tokens, _protected(text, digit_runs)):
        lengths = [len(t[2]) for t in run]
        total = sum(lengths)
        if total < 8:
            continue
        offsets = list(itertools.accumulate(lengths, initial=0))  # digits before token k
        token_at = {offset: k for k, offset in enumerate(offsets)}
        digits = "".join(t[2] for t in run)
        # A comma between groups of several digits makes a list, not a phone: commas[k]
        # counts the comma gaps before token k, multi[k] the tokens of 2+ digits before it.
        listy = "," in text[run[0][0] : run[-1][1]]
        if listy:
            gaps = [0] + [int("," in text[a[1] : b[0]]) for a, b in itertools.pairwise(run)]
            commas = list(itertools.accumulate(gaps))
            multi = list(itertools.accumulate((n > 1 for n in lengths), initial=0))
        resume = 0  # leftmost first: a group inside a number found does not start another
        for i, (start, _, _) in enumerate(run):
            base = offsets[i]
            if total - base < 8:
                break
            if i < resume:
                continue
            before = text[start - 1] if start else ""
            if before == "+":
                plus_at = start - 1
            elif before == " " and text[start - 2 : start - 1] == "+":
                plus_at = start - 2
            else:
                plus_at = -1
            sizes = _ANY_SIZES if plus_at >= 0 else _SIZES.get(digits[base : base + 2], ())
            for size in sizes:  # longest first
                k = token_at.get(base + size)
                if k is None:
                    continue
                if listy and commas[k - 1] - commas[i] and multi[k] - multi[i]:
                    continue
                candidate = digits[base : base + size]
                if not _is_phone(candidate, plus_at >= 0):
                    continue
                if size == 9 and candidate[0] == "7" and not _bare_ok(text, low, run[i:k]):
                    continue
                start_at = plus_at if plus_at >= 0 else start
                spans.append(_Span(*_balance(text, start_at, run[k - 1][1]), MaskKind.PHONE))
                resume = k
                break
    return spans


def _balance(text: str, start: int, end: int) -> tuple[int, int]:
    """Take in the bracket that opens or closes one inside the span: ``(0721) 234 567``."""
    inner = text[start:end]
    opened = inner.count("(") - inner.count(")")
    if opened < 0 and text[start - 1 : start] == "(":
        start -= 1
    elif opened > 0 and text[end : end + 1] == ")":
        end += 1
    return start, end


# ---------------------------------------------------------------- domains

# Known TLDs. Not file extensions (.jpg .pdf .doc .zip .mov) and not everyday words in our
# languages (.de .la .nu .si .pe .ai .am .in .it .to .is …), which a missing space after a
# full stop would otherwise turn into links.
_TLDS: Final = (
    *("ro", "md", "eu", "il", "hu", "bg", "ua", "ru", "pl", "gr", "nl", "ch", "fr", "uk"),
    *("us", "at", "com", "net", "org", "info", "biz", "io", "co", "me", "app", "site"),
    *("online", "shop", "store", "tech", "dev", "xyz", "pro", "live", "club", "top", "link"),
    *("page", "website", "space", "blog", "cloud", "email", "ly", "tv", "cc", "ws", "gl"),
    "tk",
)
# TLDs that are also words: a bare one needs a 3-character label or a path to count as a
# link, and never counts after a spaced " . " ("Ce zici . eu vin").
_WORDY_TLDS: Final = frozenset(
    (
        *("eu", "me", "co", "us", "at", "pro", "top", "live", "shop", "site", "app", "info"),
        *("club", "link", "page", "space", "store", "tech", "online", "email", "blog", "cloud"),
    )
)
_SAFE_TLDS: Final = tuple(t for t in _TLDS if t not in _WORDY_TLDS)
# After a dot word "at" stays an English word ("… dot at …" is no address).
_OBF_TLDS: Final = tuple(t for t in _TLDS if t != "at")


def _tld_pattern(tlds: Iterable[str]) -> str:
    return "(?:" + "|".join(sorted(tlds, key=lambda t: (-len(t), t))) + ")"


_END = rf"(?![^\W\d]|[\-{_BULLET}])"  # a digit may follow: site.ro0721… is a site and a phone
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_DOT_WORD = (
    r"(?:\s*[(\[{<]\s*(?:dot|punct|pct|\.|נקודה)\s*[)\]}>]\s*"
    r"|\s+(?:dot|punct|pct|נקודה)\s+)"
)
# A space before the dot: a full stop never has one ("Da. Ro e bine" is two sentences).
_DOT_SPACED = r"\s+\.\s*"
# An obfuscated last dot: any known TLD after a dot word, a non-word TLD after a spaced dot.
_OBF_TAIL = (
    rf"(?:{_DOT_WORD}{_tld_pattern(_OBF_TLDS)}|{_DOT_SPACED}{_tld_pattern(_SAFE_TLDS)}){_END}"
)


def _walk_left(text: str, index: int, allowed: str, limit: int) -> int:
    """Move left from ``index`` over alphanumerics and ``allowed`` characters."""
    stop = max(0, index - limit)
    while index > stop and (text[index - 1].isalnum() or text[index - 1] in allowed):
        index -= 1
    return index


def _skip_left(text: str, index: int, chars: str, limit: int) -> int:
    """Move left from ``index`` over ``chars`` (at most ``limit`` of them)."""
    stop = max(0, index - limit)
    while index > stop and text[index - 1] in chars:
        index -= 1
    return index


# ---------------------------------------------------------------- e-mails

_AT_ANCHOR = re.compile(r"@|\uff20|at|la|arond|rond|שטרודל")
_AT_WORDS: Final = frozenset({"at", "la", "arond", "rond", "שטרודל"})
_EMAIL = re.compile(
    rf"""
    (?P<local>[^\W_][\w.+\-]*)
    (?P<at>
        \s*[@\uff20]\s*
      | \s*[(\[{{<]\s*(?:at|@|arond|a\s?rond|la|שטרודל)\s*[)\]}}>]\s*
      | \s+(?:arond|a\s+rond|שטרודל|at|la)\s+
    )
    (?P<domain>(?P<first>{_LABEL})(?:\.{_LABEL}|{_OBF_TAIL})*)
    """,
    re.VERBOSE,
)
_MAIL_PROVIDERS: Final = frozenset(
    (
        *("gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "live", "msn"),
        *("icloud", "yandex", "proton", "protonmail", "gmx", "aol", "zoho", "walla"),
        *("bezeqint", "netvision", "rdslink"),
    )
)
_WEAK_AT = re.compile(r"\s+(?:at|la)\s+")
_STRONG_WORD_AT = re.compile(r"[(\[{<]|arond|rond|שטרודל")


def _email_spans(text: str, low: str) -> list[_Span]:
    spans: list[_Span] = []
    done = 0
    for anchor in _AT_ANCHOR.finditer(low):
        at_start, at_end = anchor.span()
        if at_start < done:
            continue
        if anchor.group() in _AT_WORDS and (
            _letterish(_before(text, at_start)) or _letterish(_after(text, at_end))
        ):
            continue
        if anchor.group() == "rond" and low[at_start - 2 : at_start] != "a ":
            continue
        local_end = _skip_left(low, at_start, " \t([{<", 6)
        if anchor.group() == "rond":
            local_end = _skip_left(low, local_end - 1, " \t([{<", 6)
        local_start = _walk_left(low, local_end, "_.+-", 64)
        while local_start < local_end and not low[local_start].isalnum():
            local_start += 1
        if local_start == local_end or low[local_start - 1 : local_start] in ("_", _BULLET):
            continue
        match = _EMAIL.match(low, local_start)
        if match is None or match.end("at") < at_end:
            continue
        at, domain, first = match["at"], match["domain"], match["first"]
        has_tld = domain != first
        if _WEAK_AT.fullmatch(at):
            ok = first in _MAIL_PROVIDERS and has_tld
        elif _STRONG_WORD_AT.search(at) or at.strip() == at:  # (at), arond, or unspaced @
            ok = True
        else:  # a spaced " @ "
            ok = has_tld or first in _MAIL_PROVIDERS
        if ok:
            spans.append(_Span(match.start(), match.end(), MaskKind.EMAIL))
            done = match.end()
    return spans


# ---------------------------------------------------------------- links

_SCHEME = re.compile(r"(?:https?|ftp)://[^\s<>\"'`]+")
_WWW = re.compile(r"www\d?\.[^\W_][^\s<>\"'`]*")
_DOT_TLD = re.compile(rf"\.{_tld_pattern(_TLDS)}{_END}")
_HOST = re.compile(
    rf"(?P<labels>(?:{_LABEL}\.)+)(?P<tld>{_tld_pattern(_TLDS)}){_END}"
    r"(?P<path>(?::\d{1,5})?/[^\s<>\"'`]*)?"
)
_DOT_ANCHOR = re.compile(r"punct|dot|pct|נקודה|\[\.|\(\.|\{\.|<\.| \.")
_OBF_HOST = re.compile(rf"[^\W_]{_LABEL}(?:{_DOT_WORD}{_LABEL})*?{_OBF_TAIL}")
_SOCIAL = re.compile(
    r"insta|ig|tiktok|telegram|tg|twitter|facebook|fb|threads|snap|skype|discord|signal|"
    r"viber|whatsapp|אינסטגרם|טיקטוק|פייסבוק|טלגרם"
)
_HANDLE = re.compile(r"@[^\W][\w.]{1,29}(?<!\.)")
_TRAILING = ".,;:!?'\"\u00bb\u201d\u2019)]}>"
_PAIRS: Final = {")": "(", "]": "[", "}": "{", ">": "<"}


def _trim_link(text: str, start: int, end: int) -> int:
    """The end of a link without trailing punctuation or an unbalanced closing bracket."""
    while end > start and text[end - 1] in _TRAILING:
        last = text[end - 1]
        opener = _PAIRS.get(last)
        if opener is not None and text.count(opener, start, end) >= text.count(last, start, end):
            break  # balanced: part of the link (wikipedia-style paths)
        end -= 1
    return end


class _Cover:
    """Answers "is this index inside one of these spans?" in O(log n)."""

    def __init__(self, spans: Iterable[_Span]) -> None:
        ordered = sorted(spans)
        self.starts = [s.start for s in ordered]
        self.ends = list(itertools.accumulate((s.end for s in ordered), max))

    def __contains__(self, index: int) -> bool:
        return self.holds(index, index + 1)

    def holds(self, start: int, end: int) -> bool:
        """Is ``[start, end)`` wholly inside one of the spans?"""
        k = bisect.bisect_right(self.starts, start) - 1
        return k >= 0 and self.ends[k] >= end


def _link_spans(text: str, low: str, emails: list[_Span]) -> list[_Span]:
    spans: list[_Span] = []
    for match in itertools.chain(_SCHEME.finditer(low), _WWW.finditer(low)):
        start = match.start()
        before = _before(text, start)
        if before.isalnum() or before in "_." + _BULLET:
            continue
        if match.group()[0] == "w" and before in "-@":
            continue
        spans.append(_Span(start, _trim_link(text, start, match.end()), MaskKind.LINK))
    taken = _Cover(emails + spans)
    until = 0  # the end of the last bare domain (they are found left to right)
    for anchor in _DOT_TLD.finditer(low):
        if anchor.start() < until or anchor.start() in taken:
            continue
        start = _walk_left(low, anchor.start(), "-_.", 253)
        if not low[start : start + 1].isalnum() or _before(text, start) in "@/" + _BULLET:
            continue
        host = _HOST.match(low, start)
        if host is None or host.end("tld") <= anchor.start():
            continue
        tld = text[host.start("tld") : host.end("tld")]
        if not (tld.islower() or tld.isupper()):
            continue  # "terminat.Info": a missing space
        short = len(host["labels"].split(".")[-2]) < 3
        if not host["path"] and tld.lower() in _WORDY_TLDS and short:
            continue  # "da.eu", "ok.me"
        spans.append(_Span(start, _trim_link(text, start, host.end()), MaskKind.LINK))
        until = host.end()
    taken = _Cover(emails + spans)
    until = 0
    for anchor in _DOT_ANCHOR.finditer(low):
        if anchor.start() < until or anchor.start() in taken:
            continue
        label_end = _skip_left(low, anchor.start(), " \t([{<", 6)
        start = _walk_left(low, label_end, "-_", 63)
        if start == label_end or _before(text, start) in ".-@_" + _BULLET:
            continue
        if obfuscated := _OBF_HOST.match(low, start):
            spans.append(_Span(start, obfuscated.end(), MaskKind.LINK))
            until = obfuscated.end()
    if "@" in text and any(
        not _before(low, m.start()).isalnum() and not _after(low, m.end()).isalnum()
        for m in _SOCIAL.finditer(low)
    ):
        for handle in _HANDLE.finditer(text):
            before = _before(text, handle.start())
            if not (before.isalnum() or before in "_.@" + _BULLET):
                spans.append(_Span(handle.start(), handle.end(), MaskKind.LINK))
    return spans
