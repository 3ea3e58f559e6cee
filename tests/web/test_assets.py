"""The console's files: vendored assets as listed, the generated cue, no address outside
central, and a Ukrainian translation for every message the console shows."""

from __future__ import annotations

import hashlib
import io
import re
import wave
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from central.accounts.model import Role
from central.alerts.model import STATES
from central.config import DEFAULT_REJECT_REASONS
from central.watchlist.model import CATEGORIES, VALIDITIES
from central.web import errors
from central.web.access import NAV
from central.web.board import PRIORITY_NAMES
from central.web.cue import CUE_FILE, cue_wav
from central.web.face_views import DECISION_LABELS, STATE_LABELS, STATUS_LABELS
from central.web.i18n import Catalogues, compile_catalogue

WEB = Path(__file__).resolve().parents[2] / "central" / "web"
VENDOR_MD = WEB / "static" / "vendor" / "VENDOR.md"
TESTS_VENDOR = Path(__file__).parent / "vendor"


def _listed() -> list[tuple[Path, str]]:
    """(file, sha256) from VENDOR.md's table (last two cells of each row)."""
    out = []
    for line in VENDOR_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            continue
        name = re.match(r"`([^`]+)`", cells[-2])
        if name is None:
            continue
        base = TESTS_VENDOR if cells[0].startswith("axe-core") else VENDOR_MD.parent
        out.append((base / name.group(1), cells[-1]))
    return out


def test_vendored_files_match_the_listed_hashes() -> None:
    listed = _listed()
    assert len(listed) == 8
    for path, sha in listed:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, path


def test_cue_is_the_generated_sound() -> None:
    data = CUE_FILE.read_bytes()
    assert data == cue_wav()
    with wave.open(io.BytesIO(data)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 0.2 < seconds < 1.0


@pytest.mark.parametrize(
    "path",
    sorted([*WEB.glob("templates/*.html"), *WEB.glob("static/*.js"), WEB / "static/console.css"]),
    ids=lambda p: p.name,
)
def test_no_address_outside_central(path: Path) -> None:
    assert re.findall(r"https?://|//[a-z0-9-]+\.[a-z]", path.read_text()) == []


def _messages() -> set[str]:
    found: set[str] = set()
    for template in WEB.glob("templates/*.html"):
        with template.open("rb") as fh:
            for _, _, message, _ in babel_extract(fh, ["_", "gettext"], [], {}):
                if isinstance(message, str):
                    found.add(message)
        # calls with placeholders (babel_extract leaves those out), ngettext's singular
        found |= set(re.findall(r'(?:_|ngettext)\(\s*"([^"]+)"\s*,', template.read_text()))
    for module in WEB.glob("*.py"):
        found |= set(re.findall(r'gettext\(\s*"([^"]+)"', module.read_text()))
    dynamic = [*STATES, *(r.value for r in Role), *(n.label for n in NAV)]
    dynamic += [*DEFAULT_REJECT_REASONS, *errors._TITLES.values(), *PRIORITY_NAMES.values()]
    dynamic += [*VALIDITIES, *CATEGORIES]
    dynamic += [*STATE_LABELS.values(), *DECISION_LABELS.values(), *STATUS_LABELS.values()]
    return found | set(dynamic)


def test_every_message_has_a_ukrainian_translation() -> None:
    catalogue = compile_catalogue("uk")
    missing = sorted(m for m in _messages() if catalogue.gettext(m) == m and m != "API")
    assert missing == []


def test_both_languages_load_and_format_per_locale() -> None:
    books = Catalogues("Europe/Kyiv")
    uk, en = books.get("uk"), books.get("en")
    assert (
        uk.gettext("Live alerts") == "Тривоги наживо" and en.gettext("Live alerts") == "Live alerts"
    )
    moment = 1_764_928_800.0  # 2025-12-05 10:00 UTC, 12:00 in Kyiv
    assert uk.datetime(moment) == "5 груд. 2025\u202fр., 12:00:00"
    assert en.datetime(moment) == "Dec 5, 2025, 12:00:00\u202fPM"
    assert (uk.number(12345.5), en.number(12345.5)) == ("12\xa0345,5", "12,345.5")
    assert (uk.percent(0.875), en.percent(0.875)) == ("87,5%", "87.5%")
    assert books.get("xx") is uk  # an unknown language falls back to Ukrainian
    assert uk.plate("AO1467BH") == "АО1467ВН" and uk.plate("B123ABC") == "B123ABC"


def test_durations_take_the_unit_a_reader_takes_in() -> None:
    books = Catalogues("Europe/Kyiv")
    uk, en = books.get("uk"), books.get("en")
    # A journey's gaps: seconds, minutes, hours and minutes, then days (a month is not
    # "44 535,8 хв").
    assert [uk.duration(s) for s in (42.04, 830, 5 * 3600 + 7 * 60 + 20, 2_672_148)] == [
        "42 с",
        "13,8 хв",
        "5 год 7 хв",
        "30,9 доб.",
    ]
    assert [en.duration(s) for s in (59.96, 3599, 86400, 172_800)] == [
        "60 s",
        "60 min",
        "24 h 0 min",
        "2 d",
    ]
