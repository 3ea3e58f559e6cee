"""Plate grammar: folding, formats, regions, line order and grammar-aware candidates."""

from __future__ import annotations

import pytest

from shared.plates import (
    FORMATS,
    NUMERIC_REGIONS,
    REGION_NAMES,
    REGIONS,
    PlateInfo,
    candidates,
    fold,
    join_lines,
    parse,
)

Alts = list[list[tuple[str, float]]]


def _alts(text: str, p: float = 0.95, **extra: list[tuple[str, float]]) -> Alts:
    """Per-position alternatives for a read: each character alone, except ``pN`` overrides."""
    out: Alts = []
    for i, char in enumerate(text):
        out.append(extra.get(f"p{i}", [(char, p)]))
    return out


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("аа 7681-те", "AA7681TE"),
        ("АА7681ТЕ", "AA7681TE"),
        ("aa7681te", "AA7681TE"),
        ("Кі 0001 ХХ", "KI0001XX"),
        ("ВС.1234.НС", "BC1234HC"),
        ("", ""),
    ],
)
def test_fold(raw: str, expected: str) -> None:
    assert fold(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AA1234BB", PlateInfo("ua_current", "UA-AA", True)),  # Latin
        ("КА 1234 ВХ", PlateInfo("ua_current", "UA-AA", True)),  # Cyrillic, 2013 Kyiv code
        ("АТ 7681 ТЕ", PlateInfo("ua_current", "UA-AT", True)),
        ("KT0001AA", PlateInfo("ua_current", "UA-AT", True)),
        ("HC5555OO", PlateInfo("ua_current", "UA-BC", True)),
        ("II0001AA", PlateInfo("ua_current", "UA-II", True)),
        ("AA1234ZA", PlateInfo("ua_ev", "UA-AA", True)),  # EV series with Z
        ("BH0077YY", PlateInfo("ua_ev", "UA-BH", True)),
        ("12345 KA", PlateInfo("ua_1995", "", True)),
        ("09 12345 AT", PlateInfo("ua_1995", "UA-AT", True)),  # numeric region prefix
        ("CDP 001", PlateInfo("ua_diplomatic", "", True)),  # before the US ABC-123
        ("TZC 207", PlateInfo("us", "", True)),
        ("R58 9789", PlateInfo("us", "", True)),  # Illinois
        ("DD4-C591", PlateInfo("us", "", True)),  # Texas 2004-2009
        ("8FV 480", PlateInfo("us", "", True)),  # Missouri
        ("RK-099AN", PlateInfo("sk", "", True)),
        ("1B2 5790", PlateInfo("cz", "", True)),
        ("KM BORAK", PlateInfo("sk_vanity", "", True)),  # Slovak personalised plate
        ("QX BORAK", PlateInfo("eu_generic", "", True)),  # QX is no Slovak district
        ("2011", PlateInfo("eu_generic", "", True)),
        ("GWAGEN", PlateInfo("eu_generic", "", True)),
        ("DP0000SS", PlateInfo("eu_generic", "", True)),  # D, S: not a Ukrainian series
        ("QQ1234BB", PlateInfo("eu_generic", "", True)),  # QQ is no region code
        ("A", PlateInfo("", "", False)),
        ("AA 1234 BB CC DD EE", PlateInfo("", "", False)),
        ("AA#1234", PlateInfo("", "", False)),
    ],
)
def test_parse(text: str, expected: PlateInfo) -> None:
    assert parse(text) == expected


def test_region_table_is_complete() -> None:
    # 27 regions of 2004 plus national II, each with its 2013 pair.
    assert len(REGION_NAMES) == 28
    assert len(REGIONS) == 55  # II has no second code
    assert REGIONS["AT"] == REGIONS["KT"] == "UA-AT"
    assert REGION_NAMES[REGIONS["BH"]] == "Odesa" and REGIONS["HH"] == "UA-BH"
    assert NUMERIC_REGIONS["11"] == "UA-AA" and NUMERIC_REGIONS["27"] == "UA-CH"
    letters = set("ABEIKMHOPCTX")
    assert all(set(code) <= letters for code in REGIONS)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["AA1234", "BB"], "AA1234BB"),
        (["1234", "AABB"], "AA1234BB"),  # motorcycle: digits on top
        (["ВХ", "АА 1234"], "AA1234BX"),  # lines given in the wrong order
        (["AB", "CD"], "ABCD"),  # nothing Ukrainian: top to bottom
    ],
)
def test_join_lines(lines: list[str], expected: str) -> None:
    assert join_lines(lines) == expected


@pytest.mark.parametrize(
    ("alts", "best", "fmt"),
    [
        # O read at a digit position of ua_current, 0 and 8 at letter positions.
        (_alts("AT12O4BC", p4=[("O", 0.6), ("0", 0.35)]), "AT1204BC", "ua_current"),
        (_alts("AT1234B0", p7=[("0", 0.7), ("O", 0.2)]), "AT1234BO", "ua_current"),
        (_alts("KA878110"), "KA8781IO", "ua_current"),  # no alternatives: look-alikes
        (_alts("AA1234ZA"), "AA1234ZA", "ua_ev"),
        (_alts("UA01467BH"), "AO1467BH", "ua_current"),  # flag code read before the plate
        (_alts("RRK819AM", p0=[("R", 0.55)]), "RK819AM", "sk"),  # side-band letter
        (_alts("1B285790"), "1B25790", "cz"),  # inspection stickers read as 8
        (_alts("DP0000SS"), "DP0000SS", "eu_generic"),  # fits no national grammar
        (_alts("GWAGEN"), "GWAGEN", "eu_generic"),
    ],
)
def test_candidates_best(alts: Alts, best: str, fmt: str) -> None:
    found = candidates(alts)
    assert found[0].text == best
    assert found[0].format == fmt
    assert 0.0 < found[0].confidence <= 1.0


# Alternatives as PP-OCR gives them: the read character and two more per position.
_B_SURE = [("B", 0.99), ("D", 0.004), ("C", 0.003)]
_B_OR_8 = [("B", 0.66), ("8", 0.3), ("D", 0.01)]
_O_SURE = [("O", 0.99), ("U", 0.004), ("0", 0.002)]
_ONE_SURE = [("1", 0.99), ("I", 0.006), ("7", 0.002)]
_ZERO_SURE = [("0", 0.99), ("O", 0.004), ("Q", 0.002)]
# A sure digit whose letter look-alike OCR did not propose.
_FIVE_SURE = [("5", 0.99), ("6", 0.004), ("3", 0.002)]
_EIGHT_SURE = [("8", 0.99), ("3", 0.004), ("6", 0.002)]


@pytest.mark.parametrize(
    ("alts", "best", "fmt"),
    [
        # A confident B without an 8 among its alternatives is not swapped to fit the
        # UK layout (LLDD LLL); with an 8 proposed it is.
        (_alts("KMBORAK", p2=_B_SURE, p3=_O_SURE), "KMBORAK", "sk_vanity"),
        (_alts("KMBORAK", p2=_B_OR_8, p3=_O_SURE), "KM80RAK", "uk"),
        # 1/I and 0/O proposed, however unlikely: still turned into the series letters.
        (_alts("KA878110", p=0.99, p6=_ONE_SURE, p7=_ZERO_SURE), "KA8781IO", "ua_current"),
        # Coat of arms read between district and text of a personalised plate.
        (_alts("KMGBORAK", p2=[("G", 0.4), ("C", 0.2), ("6", 0.1)]), "KMBORAK", "sk_vanity"),
    ],
)
def test_lookalikes_follow_the_ocr_alternatives(alts: Alts, best: str, fmt: str) -> None:
    found = candidates(alts)
    assert (found[0].text, found[0].format) == (best, fmt)


@pytest.mark.parametrize(
    ("alts", "best", "at_least", "below"),
    [
        # A sure 1 where only a letter fits is the letter I, as sure as the 1 was read.
        (_alts("AA1234B1", p=0.99, p7=_ONE_SURE), "AA1234BI", 0.98, 1.0),
        # A sure 0 there is an O only at a look-alike's share: plate fonts draw the 0
        # narrower, and the read loses confidence.
        (_alts("AA1234B0", p=0.99, p7=_ZERO_SURE), "AA1234BO", 0.5, 0.9),
    ],
)
def test_a_ruled_out_one_reads_as_its_twin(
    alts: Alts, best: str, at_least: float, below: float
) -> None:
    top = candidates(alts)[0]
    assert top.text == best and top.format == "ua_current"
    assert at_least <= top.confidence < below


@pytest.mark.parametrize(
    ("alts", "best", "fmt"),
    [
        # Read as it is on the plate, an Illinois, Missouri or Texas layout is not bent
        # into the Polish or the three-and-three one by look-alikes (RSB9789, BFV480).
        (_alts("R589789", p=0.99, p1=_FIVE_SURE, p2=_EIGHT_SURE), "R589789", "us"),
        (_alts("8FV480", p=0.99, p0=_EIGHT_SURE), "8FV480", "us"),
        (_alts("DD4C591", p=0.99), "DD4C591", "us"),
        # Seven digits (several states) are not made Illinois by a look-alike.
        (_alts("8951283", p=0.99, p0=_EIGHT_SURE), "8951283", "eu_generic"),
        (_alts("1366026"), "1366026", "eu_generic"),
    ],
)
def test_us_layouts_read_as_they_are(alts: Alts, best: str, fmt: str) -> None:
    found = candidates(alts)
    assert (found[0].text, found[0].format) == (best, fmt)


@pytest.mark.parametrize(
    ("alts", "best", "fmt"),
    [
        # Transit, diplomatic and military plates are searched as what they are, not
        # bent into the Slovak or Polish layouts (TG644KA, SO01703).
        (_alts("T6644KA", p1=[("6", 0.6), ("G", 0.3)]), "T6644KA", "ua_transit"),
        (_alts("S001703", p=0.99, p1=_ZERO_SURE), "S001703", "ua_diplomatic"),
        (_alts("CDP133747"), "CDP133747", "ua_diplomatic"),
        (_alts("DP100113"), "DP100113", "ua_diplomatic"),
        (
            _alts("5832P1", p=0.99, p3=[("2", 0.99), ("7", 0.004), ("3", 0.002)]),
            "5832P1",
            "ua_military",
        ),
    ],
)
def test_ukrainian_special_layouts(alts: Alts, best: str, fmt: str) -> None:
    found = candidates(alts)
    assert (found[0].text, found[0].format) == (best, fmt)


# An O whose alternatives leave the 0 out, as PP-OCR's often do on a US font.
_O_NO_ZERO = [("O", 0.99), ("D", 0.005), ("Q", 0.003)]
_I_NO_ONE = [("I", 0.92), ("T", 0.02), ("L", 0.01)]


@pytest.mark.parametrize(
    ("alts", "best", "fmt"),
    [
        # Missouri's CK0-A1F read CKO-AIP: in digit slots the O and the I are the 0 and
        # the 1, listed or not, and the plate outranks the read taken as it is.
        (_alts("CKO-AIP", p2=_O_NO_ZERO, p5=_I_NO_ONE), "CK0A1P", "us"),
        # Missouri's emblem between the groups read as a letter.
        (_alts("SHOWR7X", p=0.95, p2=_O_NO_ZERO, p3=[("W", 0.8), ("M", 0.17)]), "SH0R7X", "us"),
    ],
)
def test_an_o_in_a_digit_slot_is_a_zero(alts: Alts, best: str, fmt: str) -> None:
    found = candidates(alts)
    assert (found[0].text, found[0].format) == (best, fmt)


def test_candidates_ranked_and_keep_the_raw_read() -> None:
    found = candidates(_alts("AT12O4BC", p4=[("O", 0.6), ("0", 0.35)]), top_n=5)
    texts = [c.text for c in found]
    assert texts[0] == "AT1204BC"
    assert "AT12O4BC" in texts  # the read as it was stays a candidate
    assert [c.confidence for c in found] == sorted((c.confidence for c in found), reverse=True)
    assert len(found) <= 5


def test_candidates_of_nothing() -> None:
    assert candidates([]) == []
    assert candidates([[("-", 0.9)]]) == []


def test_formats_allow_their_own_examples() -> None:
    by_name = {f.name: f for f in FORMATS}
    assert by_name["ua_current"].allows("BC1234HA")
    assert not by_name["ua_current"].allows("BC1234QA")  # Q is not a plate letter
    assert not by_name["ua_current"].allows("BC12345A")
