"""Plate understanding shared by edge and central: folding, formats, regions, candidates.

Registries write Ukrainian plates in Cyrillic; OCR reads Latin. Both sides fold to one
script, the Latin look-alikes, before any comparison.

A plate format is a sequence of slots, each a set of allowed characters (:data:`FORMATS`).
:func:`parse` names the format of a text; :func:`candidates` turns per-position OCR
alternatives into the most probable strings each format allows, so a ``0`` read at a
letter position of a Ukrainian plate becomes ``O`` in a candidate while the raw read
stays as it was. Pure Python: both edge and central import this.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# The 12 Cyrillic letters used on Ukrainian plates and their Latin look-alikes.
CYRILLIC_TO_LATIN: Final = str.maketrans(
    {
        "А": "A", "В": "B", "Е": "E", "І": "I", "К": "K", "М": "M",
        "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X",
        "Ї": "I", "Є": "E",
    }
)  # fmt: skip
_SEPARATORS: Final = str.maketrans("", "", " -.·_\t\n")

DIGITS: Final = "0123456789"
LATIN: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
UA_LETTERS: Final = "ABEIKMHOPCTX"
UA_EV_LETTERS: Final = UA_LETTERS + "YZ"

# Region codes of the 2004 scheme and their 2013 pairs -> region label (2004 code).
_REGION_PAIRS: Final = {
    "AA": ("KA", "Kyiv city"),
    "AB": ("KB", "Vinnytsia"),
    "AC": ("KC", "Volyn"),
    "AE": ("KE", "Dnipropetrovsk"),
    "AH": ("KH", "Donetsk"),
    "AI": ("KI", "Kyiv oblast"),
    "AK": ("KK", "Crimea"),
    "AM": ("KM", "Zhytomyr"),
    "AO": ("KO", "Zakarpattia"),
    "AP": ("KP", "Zaporizhzhia"),
    "AT": ("KT", "Ivano-Frankivsk"),
    "AX": ("KX", "Kharkiv"),
    "BA": ("HA", "Kirovohrad"),
    "BB": ("HB", "Luhansk"),
    "BC": ("HC", "Lviv"),
    "BE": ("HE", "Mykolaiv"),
    "BH": ("HH", "Odesa"),
    "BI": ("HI", "Poltava"),
    "BK": ("HK", "Rivne"),
    "BM": ("HM", "Sumy"),
    "BO": ("HO", "Ternopil"),
    "BT": ("HT", "Kherson"),
    "BX": ("HX", "Khmelnytskyi"),
    "CA": ("IA", "Cherkasy"),
    "CB": ("IB", "Chernihiv"),
    "CE": ("IE", "Chernivtsi"),
    "CH": ("IH", "Sevastopol"),
    "II": ("II", "national"),
}
#: Letter region code (either scheme) -> region label, e.g. ``KT -> UA-AT``.
REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {code: f"UA-{base}" for base, (new, _) in _REGION_PAIRS.items() for code in (base, new)}
)
#: Region label -> region name, e.g. ``UA-AT -> Ivano-Frankivsk``.
REGION_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {f"UA-{base}": name for base, (_, name) in _REGION_PAIRS.items()}
)
# Numeric region codes of the 1995-2004 plates (same order as the KOATUU regions).
_NUMERIC_REGIONS: Final = (
    "AK", "AB", "AC", "AE", "AH", "AM", "AO", "AP", "AT", "AI", "AA", "BA", "BB", "BC",
    "BE", "BH", "BI", "BK", "BM", "BO", "AX", "BT", "BX", "CA", "CE", "CB", "CH",
)  # fmt: skip
#: Two-digit region code of the 1995 format -> region label, e.g. ``09 -> UA-AT``.
NUMERIC_REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {f"{i:02d}": f"UA-{code}" for i, code in enumerate(_NUMERIC_REGIONS, start=1)}
)

#: The one table of OCR look-alikes (DOMAIN.md): characters OCR takes for one another on
#: plates. The plate grammar uses them where a slot forbids what OCR read; the watchlist
#: matcher and search collapse each class to its first character to find a plate under any
#: of its misreads. Stored reads are never rewritten with them. 7 and T are not among them:
#: DOMAIN.md does not list them, and a wanted AT1234BO must not hit a read A71234B0.
CONFUSION_CLASSES: Final = ("0ODQ", "1I", "8B", "5S", "2Z", "6G")
#: Character -> its look-alikes, from :data:`CONFUSION_CLASSES` (``O -> 0DQ``).
CONFUSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {char: cls.replace(char, "") for cls in CONFUSION_CLASSES for char in cls}
)


@dataclass(frozen=True, slots=True)
class PlateFormat:
    """A plate layout: one set of allowed characters per position.

    Attributes:
        name: Format label, e.g. ``ua_current``.
        slots: Allowed characters per position; ``""`` marks a position that OCR may
            fill with something that is not part of the plate (a sticker between
            groups) and that is dropped from the text.
        prior: How much to trust a candidate of this format relative to others.
        check: Extra validity test on the final text (region table, EV letters).
        breaks: Slot indices before which the plate has a gap; a separator OCR reads
            anywhere else counts against the format. None allows gaps anywhere.
    """

    name: str
    slots: tuple[str, ...]
    prior: float = 1.0
    check: Callable[[str], bool] | None = None
    breaks: frozenset[int] | None = None

    def allows(self, text: str) -> bool:
        """Whether ``text`` (folded) fits this format exactly, ignoring dropped slots."""
        slots = [s for s in self.slots if s]
        return (
            len(text) == len(slots)
            and all(c in s for c, s in zip(text, slots, strict=True))
            and (self.check is None or self.check(text))
        )


@dataclass(frozen=True, slots=True)
class PlateInfo:
    """What :func:`parse` says about a plate text."""

    format: str
    region: str
    valid: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """One grammar-respecting reading of a plate."""

    text: str
    confidence: float
    format: str


def _format(
    name: str,
    spec: str,
    prior: float,
    check: Callable[[str], bool] | None = None,
    **sets: str,
) -> PlateFormat:
    """A format from a spec: one letter per slot naming its set, ``_`` a dropped slot,
    ``|`` a place where the plate has a gap (a space, dash or emblem)."""
    slots: list[str] = []
    breaks: set[int] = set()
    for c in spec:
        if c == "|":
            breaks.add(len(slots))
        else:
            slots.append(sets.get(c, ""))
    return PlateFormat(name, tuple(slots), prior, check, frozenset(breaks))


def _ua_region(text: str) -> bool:
    return text[:2] in REGIONS


def _ua_ev(text: str) -> bool:
    return text[:2] in REGIONS and bool(set(text[6:]) & {"Y", "Z"})


def _ua_transit_region(text: str) -> bool:
    return text[-2:] in REGIONS


# Slovak district codes (1997-2022 plates and personalised plates), with the extra
# codes of the big cities.
SK_DISTRICTS: Final = frozenset((
    "BA", "BL", "BT", "BD", "BE", "BI", "BB", "BC", "BK", "BJ", "BN", "BR", "BS", "BY", "CA",
    "DK", "DN", "DS", "DT", "GA", "GL", "HC", "HE", "IL", "KA", "KE", "KC", "KI", "KK", "KM",
    "KN", "KS", "LC", "LE", "LM", "LV", "MA", "MI", "ML", "MT", "MY", "NR", "NI", "NT", "NM",
    "NO", "NZ", "PB", "PD", "PE", "PK", "PN", "PO", "PV", "PS", "PP", "PT", "PU", "RA", "RK",
    "RS", "RV", "SA", "SB", "SC", "SE", "SI", "SK", "SL", "SN", "SO", "SP", "SV", "TN", "TC",
    "TE", "TO", "TR", "TS", "TT", "TA", "TB", "TV", "VK", "VT", "ZA", "ZI", "ZL", "ZC", "ZH",
    "ZM", "ZV",
))  # fmt: skip


def _sk_district(text: str) -> bool:
    return text[:2] in SK_DISTRICTS


_L, _D = LATIN, DIGITS
_US_L = "".join(c for c in LATIN if c not in "IOQ")  # letters of the newer US layouts
GENERIC: Final = "eu_generic"
#: Format name of the US layouts; their reads pass a stricter gate than European ones.
US: Final = "us"
US_PRIOR: Final = 0.8
US_NEAR_PRIOR: Final = 0.55  # a US layout one look-alike from the all-digit plates
#: Formats the candidate search knows, most specific first. ``eu_generic`` is the
#: fallback: any 4-8 Latin letters and digits (personalised plates, other countries).
FORMATS: Final[tuple[PlateFormat, ...]] = (
    _format("ua_current", "UU|DDDD|UU", 1.0, _ua_region, U=UA_LETTERS, D=_D),
    _format("ua_ev", "UU|DDDD|EE", 1.0, _ua_ev, U=UA_LETTERS, D=_D, E=UA_EV_LETTERS),
    _format("ua_1995", "DD|D|DD|UU", 0.9, U=UA_LETTERS, D=_D),
    # Transit (``T 1234 AA``, the region last), diplomatic (``CDP 123 456``, ``DP 123 456``,
    # ``D 123 456``, ``S 123 456``) and military (``12 34 A5``) plates. Without them the
    # search bent a transit plate's first digit into a letter to fit the Slovak layout
    # (``TG644KA`` for T6644KA) and a diplomatic plate's into the Polish one (``SO01703``).
    # The one-letter diplomatic layouts sit at the Polish layout's prior, below the
    # Slovak: a seven-digit read is made diplomatic by a 0 or 5 taken for D or S only at
    # a look-alike's share. The military layout sits lower still: a 0 taken for an O
    # makes a six-digit number on a sign fit it (``2199O6``), never as high as a plate.
    _format("ua_transit", "T|DDDD|UU", 1.0, _ua_transit_region, T="T", U=UA_LETTERS, D=_D),
    _format("ua_diplomatic", "CXP|DDD|DDD", 1.0, C="C", X="D", P="P", D=_D),
    _format("ua_diplomatic", "XP|DDD|DDD", 0.9, X="D", P="P", D=_D),
    _format("ua_diplomatic", "X|DDD|DDD", 0.85, X="DS", D=_D),
    _format("ua_military", "DD|DD|UD", 0.55, U=UA_LETTERS, D=_D),
    _format("sk", "LL|DDD|LL", 0.9, L=_L, D=_D),
    _format("cz", "DLD|DDDD", 0.85, L=_L, D=_D),
    _format("pl", "LL|DDDDD", 0.85, L=_L, D=_D),
    _format("pl", "LLL|DDDD", 0.85, L=_L, D=_D),
    _format("uk", "LLDD|LLL", 0.85, L=_L, D=_D),
    # The Slovak coat of arms and the Czech inspection stickers sit between the first
    # and the second group and often read as one extra character there.
    _format("sk", "LL|_|DDD|LL", 0.9, L=_L, D=_D),
    _format("cz", "DLD|_|DDDD", 0.85, L=_L, D=_D),
    _format("cz", "LLL|_|DD|DD", 0.8, L=_L, D=_D),
    # Two letters, four digits, two letters outside the Ukrainian letter set
    # (personalised and foreign plates of the same layout).
    _format(GENERIC, "LL|DDDD|LL", 0.75, L=_L, D=_D),
    # Layouts that many US states issue (the state is not read from the plate): Missouri's
    # ``AB1-C2D``, California's ``1ABC234`` (and ``1A23456`` commercial), the older
    # three-and-three plates either way round. ``ABC-1234`` (Texas, New York, ...) is the
    # Polish layout above, read the same. Below every European layout: a read that fits
    # one of those is taken as it.
    _format(US, "LLD|LDL", US_PRIOR, L=_L, D=_D),
    _format(US, "D|LLL|DDD", US_PRIOR, L=_L, D=_D),
    _format(US, "D|L|DDDDD", US_PRIOR, L=_L, D=_D),
    _format(US, "LLL|DDD", US_PRIOR, L=_L, D=_D),
    _format(US, "DDD|LLL", US_PRIOR, L=_L, D=_D),
    # Missouri's ``1AB 234`` and Texas' 2004-2009 ``AB1-C234``; these states issue no I,
    # O or Q (a 1 or 0 is never bent into one).
    _format(US, "DLL|DDD", US_PRIOR, L=_US_L, D=_D),
    _format(US, "LLD|LDDD", US_PRIOR, L=_US_L, D=_D),
    # Missouri's emblem between the groups of ``SH0 R7X`` often reads as a letter
    # (``SHOWR7X``), as the Slovak coat of arms does.
    _format(US, "LLD|_|LDL", US_PRIOR, L=_US_L, D=_D),
    # Illinois' ``A12 3456`` is one look-alike from the all-digit plates of other states
    # (read by the generic fallback): a lower prior, so that only a read showing the
    # letter as it is takes the layout, never a digit bent into it. Not offered for a D
    # or S: Ukrainian diplomatic plates (``D123456``, ``S057703``) share the layout.
    _format(US, "FDD|DDDD", US_NEAR_PRIOR, F=_US_L.replace("D", "").replace("S", ""), D=_D),
    # Slovak personalised plates: the district code and five letters or digits. Below
    # the regular layout, which wins whenever a read fits both.
    _format("sk_vanity", "LL|AAAAA", 0.5, _sk_district, L=_L, A=_L + _D),
    _format("sk_vanity", "LL|_|AAAAA", 0.5, _sk_district, L=_L, A=_L + _D),
)
GENERIC_PRIOR: Final = 0.4  # confidence factor of the generic fallback read
#: Calibrated plate confidence at or above which a read may hit a strict wanted list: the
#: alert threshold that ``varta bench calibrate`` chose (edge_agent/plate_calibration.json,
#: a test keeps the two equal). Below it a read is a candidate for search only.
STRICT_MIN_CONFIDENCE: Final = 0.99
_GENERIC_RE: Final = re.compile(r"[A-Z0-9]{3,10}")
# Layouts parse() recognises beyond FORMATS: diplomatic plates with a shorter serial, and
# transit plates with the T after the digits (the search reads those as ua_current) or
# without a region code. (Military plates are all in FORMATS.)
_EXTRA_RE: Final = (
    ("ua_diplomatic", re.compile(r"(CDP|DP|D|S)\d{3,6}")),
    ("ua_transit", re.compile(r"[ABCEHIKMOPTX]{2}\d{4}T[ABCEHIKMOPTX]|T\d{4}[ABCEHIKMOPTX]{2}")),
)


def fold(text: str) -> str:
    """Fold a plate to comparable form: upper case, Latin look-alikes, no separators.

    >>> fold("аа 7681-те")
    'AA7681TE'
    """
    return text.upper().translate(CYRILLIC_TO_LATIN).translate(_SEPARATORS)


# The inverse of the 12 base letters (Ї and Є fold too, but registries never print them).
_LATIN_TO_CYRILLIC: Final = {
    latin: chr(cyr) for cyr, latin in CYRILLIC_TO_LATIN.items() if chr(cyr) not in "ЇЄ"
}


def registry_form(text: str) -> str:
    """A folded Ukrainian plate written as the registry writes it, in Cyrillic letters.

    Only the 12 letters Ukrainian plates use are changed; call it for Ukrainian formats.

    >>> registry_form("AA7681TE")
    'АА7681ТЕ'
    """
    return "".join(_LATIN_TO_CYRILLIC.get(c, c) for c in fold(text))


def parse(text: str) -> PlateInfo:
    """Name the format and region of a plate text (Cyrillic or Latin, any separators).

    >>> parse("КА 1234 ВХ")
    PlateInfo(format='ua_current', region='UA-AA', valid=True)
    """
    plate = fold(text)
    for fmt in FORMATS:
        if fmt.name != US and fmt.allows(plate) and "" not in fmt.slots:
            return PlateInfo(fmt.name, _region(fmt.name, plate), True)
    match = re.fullmatch(r"(\d\d)(\d{5}[ABCEHIKMOPTX]{2})", plate)
    if match and match.group(1) in NUMERIC_REGIONS:
        return PlateInfo("ua_1995", NUMERIC_REGIONS[match.group(1)], True)
    for name, pattern in _EXTRA_RE:
        if pattern.fullmatch(plate):
            return PlateInfo(name, "", True)
    # US layouts last: Ukrainian diplomatic plates (``CDP001``) fit ``ABC-123`` too.
    if any(fmt.name == US and fmt.allows(plate) for fmt in FORMATS):
        return PlateInfo(US, "", True)
    if _GENERIC_RE.fullmatch(plate):
        return PlateInfo(GENERIC, "", True)
    return PlateInfo("", "", False)


def _region(name: str, plate: str) -> str:
    return REGIONS.get(plate[:2], "") if name in ("ua_current", "ua_ev") else ""


def join_lines(lines: Sequence[str]) -> str:
    """Put the lines of a multi-line plate (top line first) into reading order.

    Square Ukrainian plates split ``AA1234BB`` in different ways (``AA1234`` over ``BB``,
    or ``1234`` over ``AABB`` on motorcycles); the order that gives a valid
    Ukrainian format wins, else the lines are joined top to bottom.
    """
    parts = [fold(line) for line in lines if fold(line)]
    options = ["".join(p) for p in itertools.permutations(parts)]
    if len(parts) == 2:
        for digits, letters in (parts, parts[::-1]):
            half = len(letters) // 2
            options.append(letters[:half] + digits + letters[half:])
    for option in options:
        if parse(option).format.startswith("ua_"):
            return option
    return "".join(parts)


Alternatives = Sequence[Sequence[tuple[str, float]]]

_FLOOR: Final = 1e-4  # probability given to an allowed character OCR did not propose
_LOOKALIKE: Final = 0.2  # fraction of a read character's probability its look-alike gets
# Glyphs OCR confuses most on plates, whatever the font: where the format rules one out,
# the read is the other. An O where only a digit fits is a 0 (US fonts draw the two
# alike: Missouri's ``CK0-A1F`` reads ``CKO-AIP``), but a 0 where only a letter fits
# stays a look-alike: European plate fonts draw the 0 narrower, and giving O the full
# share let two-letter formats swallow reads like W053011.
_TWINS: Final[Mapping[str, str]] = MappingProxyType({"1": "I", "I": "1", "O": "0"})
# Twins whose glyph is the same in the fonts that draw both: OCR's alternatives for an O
# often list Q, D and U but not the 0 (``CKO-AIP``), and a digit slot takes it anyway.
# (Not 1 for I: a sure 1 in a seven-digit plate read as a California ``1A23456``.)
_SAME_GLYPH: Final = frozenset("O")
_DROP_COST: Final = 0.35  # factor 1 - cost * p**4 per dropped character read with p
_MISPLACED_GAP: Final = 0.5  # per separator read inside a group of the format
_TRIM_END: Final = 0.8  # extra factor per character dropped from the end (no band there)
_BEAM: Final = 8


def _slot_probs(alts: Sequence[tuple[str, float]], allowed: str) -> list[tuple[str, float]]:
    """Probability of each allowed character at one position, best first.

    A look-alike of a read character gets a share of its probability: OCR is not
    calibrated on plate fonts, where ``0`` and ``O`` or ``1`` and ``I`` are near twins.
    Only a look-alike OCR proposed itself (among its alternatives, however unlikely)
    gets the full share; one it left out of its alternatives gets no more than the
    probability OCR left unlisted, so a ``B`` read with 0.99 and only ``D`` and ``C``
    besides stays a B whatever a format would like there (an O where only a digit fits
    is the exception: :data:`_SAME_GLYPH`). A position given without
    alternatives says nothing either way and keeps the full share.
    """
    listed = {fold(read) or read for read, _ in alts}
    unlisted = max(1.0 - sum(p for _, p in alts), _FLOOR) if len(alts) > 1 else 1.0
    probs: dict[str, float] = {}
    for read, p in alts:
        char = fold(read) or read
        if char in allowed:
            probs[char] = max(probs.get(char, 0.0), p)
        for alike in CONFUSIONS.get(char, ""):
            if alike in allowed:
                # A glyph the format rules out here is read as its twin outright.
                twin = char not in allowed and alike == _TWINS.get(char)
                share = p if twin else p * _LOOKALIKE
                if alike not in listed and not (twin and char in _SAME_GLYPH):
                    share = min(share, unlisted)
                probs[alike] = max(probs.get(alike, 0.0), share)
    if not probs:
        probs = dict.fromkeys(allowed, _FLOOR)
    return sorted(probs.items(), key=lambda kv: -kv[1])[:4]


def _drop_factor(alts: Alternatives) -> float:
    """Cost of declaring read characters not part of the plate.

    A side band, flag or sticker usually reads with less confidence than a glyph, so
    dropping a confidently read character costs more (down to a factor of 0.5).
    """
    factor = 1.0
    for position in alts:
        p = position[0][1] if position else 0.0
        factor *= 1.0 - _DROP_COST * p**4
    return factor


def _search(
    alts: Alternatives, fmt: PlateFormat, probs: Callable[[int, str], SlotProbs]
) -> list[tuple[str, float]]:
    """Beam search for the best texts of one format over aligned positions.

    ``probs(i, allowed)`` gives the allowed characters' probabilities at position ``i``.
    """
    beam: list[tuple[str, float]] = [("", 0.0)]
    dropped = [a for a, slot in zip(alts, fmt.slots, strict=True) if not slot]
    for i, allowed in enumerate(fmt.slots):
        if not allowed:
            continue
        options = probs(i, allowed)
        beam = sorted(
            ((text + c, logp + logq) for text, logp in beam for c, logq in options),
            key=lambda tl: -tl[1],
        )[:_BEAM]
    n = sum(1 for s in fmt.slots if s)
    drop = _drop_factor(dropped)
    return [
        (text, math.exp(logp / n) * drop)
        for text, logp in beam
        if fmt.check is None or fmt.check(text)
    ]


SlotProbs = list[tuple[str, float]]


def _memo(window: Alternatives) -> Callable[[int, str], SlotProbs]:
    """Per-position log-probabilities of allowed characters, computed once per set."""
    cache: dict[tuple[int, str], SlotProbs] = {}

    def probs(i: int, allowed: str) -> SlotProbs:
        key = (i, allowed)
        if key not in cache:
            cache[key] = [(c, math.log(p)) for c, p in _slot_probs(window[i], allowed)]
        return cache[key]

    return probs


def _aligned(alts: Alternatives) -> tuple[list[Sequence[tuple[str, float]]], set[int]]:
    """The alphanumeric positions of a read, and the indices a separator precedes."""
    aligned: list[Sequence[tuple[str, float]]] = []
    gaps: set[int] = set()
    for position in alts:
        if not position:
            continue
        if fold(position[0][0]).isalnum():
            aligned.append(position)
        elif aligned:
            gaps.add(len(aligned))
    return aligned, gaps


def candidates(alts: Alternatives, top_n: int = 5) -> list[Candidate]:
    """Most probable plate texts for per-position OCR alternatives, best first.

    Every format whose length fits the read (after dropping up to two characters from
    its ends, e.g. a country code or flag read from the plate's side band) proposes its
    best texts; their confidence is the geometric mean of the character probabilities,
    times the format's prior, a penalty per dropped character and one per separator
    read where the format has no gap (``W-053011`` is not Polish). The read itself
    (alphanumerics, folded) is always proposed as ``eu_generic``.

    Args:
        alts: Per read character, ``(character, probability)`` pairs (OCR top-k).
        top_n: How many candidates to return.
    """
    found: dict[str, Candidate] = {}

    def add(text: str, conf: float, name: str) -> None:
        if text and (text not in found or found[text].confidence < conf):
            found[text] = Candidate(text, min(conf, 1.0), name)

    read = [(fold(a[0][0]), a[0][1]) for a in alts if a and fold(a[0][0]).isalnum()]
    if len(read) >= 3:
        geo = math.exp(sum(math.log(max(p, _FLOOR)) for _, p in read) / len(read))
        add("".join(c for c, _ in read), geo * GENERIC_PRIOR, GENERIC)
    aligned, gaps = _aligned(alts)
    for start, end in itertools.product(range(3), range(3)):
        window = aligned[start : len(aligned) - end]
        fits = [fmt for fmt in FORMATS if len(fmt.slots) == len(window)]
        if not fits:
            continue
        probs = _memo(window)
        trimmed = [*aligned[:start], *aligned[len(aligned) - end :]]
        seen = {g - start for g in gaps if start < g < len(aligned) - end}
        for fmt in fits:
            penalty = fmt.prior * _drop_factor(trimmed) * _TRIM_END**end
            if fmt.breaks is not None:
                penalty *= _MISPLACED_GAP ** len(seen - fmt.breaks)
            for text, conf in _search(window, fmt, probs)[:top_n]:
                add(text, conf * penalty, fmt.name)
    return sorted(found.values(), key=lambda c: -c.confidence)[:top_n]
