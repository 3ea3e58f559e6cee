"""Benchmark of watchlist import and matching with a large synthetic national list.

Generates realistic Ukrainian plates (region codes, four digits, two series letters from
the 12 allowed, some EV series), a share of EU-style plates and a few hundred wildcard and
attribute entries; writes them as a Cyrillic CSV export, imports it into a DuckDB file,
builds the ``Matcher`` and times ``match`` on sightings with 3-5 plate texts each (a mix
of misses, exact hits, OCR confusions and one-character insertions/deletions).
"""

from __future__ import annotations

import csv
import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.stats import percentile
from central.store.db import Database
from central.watchlist.matcher import Matcher
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import import_file
from shared.wire import Plate, PlateCandidate, Sighting, Vehicle, new_event_id

REGIONS: Final = (
    "AA", "KA", "AB", "KB", "AC", "KC", "AE", "KE", "AH", "KH", "AI", "KI", "AK", "KK", "AM",
    "KM", "AO", "KO", "AP", "KP", "AT", "KT", "AX", "KX", "BA", "HA", "BB", "HB", "BC", "HC",
    "BE", "HE", "BH", "HH", "BI", "HI", "BK", "HK", "BM", "HM", "BO", "HO", "BT", "HT", "BX",
    "HX", "CA", "IA", "CB", "IB", "CE", "IE", "II",
)  # fmt: skip
SERIES: Final = "ABCEHIKMOPTX"
TO_CYRILLIC: Final = str.maketrans("ABCEHIKMOPTX", "АВСЕНІКМОРТХ")
CONFUSE: Final = {"0": "O", "O": "0", "1": "I", "I": "1", "8": "B", "B": "8", "5": "S", "2": "Z"}
CATEGORIES: Final = ("stolen", "wanted", "violation", "crash", "other")


def ua_plate(rng: random.Random) -> str:
    """A current-format Ukrainian plate in Latin look-alikes (2% EV series)."""
    series = rng.choice("ZY") + rng.choice(SERIES) if rng.random() < 0.02 else ""
    series = series or rng.choice(SERIES) + rng.choice(SERIES)
    return f"{rng.choice(REGIONS)}{rng.randrange(10000):04d}{series}"


def eu_plate(rng: random.Random) -> str:
    """An EU-style plate: Polish, German, French or Lithuanian-like layouts."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    style = rng.randrange(4)
    if style == 0:
        return "".join(rng.choices(letters, k=2)) + f"{rng.randrange(100000):05d}"
    if style == 1:
        return "".join(rng.choices(letters, k=3)) + f"{rng.randrange(10000):04d}"
    if style == 2:
        return (
            "".join(rng.choices(letters, k=2))
            + f"{rng.randrange(1000):03d}"
            + "".join(rng.choices(letters, k=2))
        )
    return "".join(rng.choices(letters, k=3)) + f"{rng.randrange(1000):03d}"


def plates(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct plates, 95% Ukrainian, 5% EU."""
    out: set[str] = set()
    while len(out) < count:
        out.add(eu_plate(rng) if rng.random() < 0.05 else ua_plate(rng))
    return sorted(out)


def write_export(path: Path, listed: list[str], rng: random.Random, partial: int) -> None:
    """Write a registry-style CSV export (Cyrillic plates) with ``partial`` extra entries."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["plate", "category", "priority", "reason", "case_ref", "valid_until",
                      "vehicle_type", "colour"])  # fmt: skip
        for i, plate in enumerate(listed):
            until = "2099-12-31" if i % 10 == 0 else ""
            out.writerow([plate.translate(TO_CYRILLIC), CATEGORIES[i % 5], 1 + i % 5,
                          "розшук", f"12025{i:07d}", until, "", ""])  # fmt: skip
        for row in partial_entries(rng, partial):
            out.writerow(row)


def partial_entries(rng: random.Random, count: int) -> list[list[object]]:
    """``count`` distinct wildcard (``AT12??B?``, ``*1234B*``) and attribute entries."""
    rows: dict[str, list[object]] = {}
    while len(rows) < count:
        region, kind = rng.choice(REGIONS), len(rows) % 3
        if kind == 0:
            pattern = f"{region}{rng.randrange(100):02d}??{rng.choice(SERIES)}?"
            rows.setdefault(pattern, [pattern, "wanted", 2, "", "", "", "", ""])
        elif kind == 1:
            pattern = f"*{rng.randrange(10000):04d}{rng.choice(SERIES)}*"
            rows.setdefault(pattern, [pattern, "other", 3, "", "", "", "", ""])
        else:
            pattern, vtype = f"{region}{rng.randrange(100):02d}*", rng.choice(["van", "car"])
            rows.setdefault(f"{pattern}:{vtype}", [pattern, "wanted", 2, "", "", "", vtype,
                                                   "silver"])  # fmt: skip
    return list(rows.values())


def _mutate(rng: random.Random, text: str, indel: float) -> str:
    """One OCR-like error: mostly a confusable character, else another substitution or,
    with probability ``indel``, a lost or an extra character."""
    roll = rng.random()
    if roll < indel / 2:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if roll < indel:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice("0123456789ABCEHIKMOPTX") + text[i:]
    spots = [i for i, ch in enumerate(text) if ch in CONFUSE]
    if spots and roll < 0.75:
        i = rng.choice(spots)
        return text[:i] + CONFUSE[text[i]] + text[i + 1 :]
    i = rng.randrange(len(text))
    return text[:i] + rng.choice("0123456789ABCEHIKMOPTX") + text[i + 1 :]


def sightings(rng: random.Random, listed: list[str], count: int, hit_rate: float) -> list[Sighting]:
    """Sightings with 3-5 plate texts; ``hit_rate`` of them concern a listed plate.

    The top read is right 80% of the time; the other candidates each carry one OCR-like
    error (see ``_mutate``); every text is also sent as the raw read with a space.
    """
    out: list[Sighting] = []
    for _ in range(count):
        truth = rng.choice(listed) if rng.random() < hit_rate else ua_plate(rng)
        texts = [truth if rng.random() < 0.8 else _mutate(rng, truth, 0.25)]
        texts += [_mutate(rng, truth, 0.2) for _ in range(rng.randrange(2, 5))]
        plate = Plate(
            text=texts[0],
            raw=texts[0][:2] + " " + texts[0][2:],
            confidence=rng.uniform(0.5, 0.99),
            candidates=[PlateCandidate(t, rng.uniform(0.05, 0.5)) for t in texts[1:]],
        )
        vehicle = Vehicle(box=(0, 0, 10, 10), type=rng.choice(["car", "van"]), colour="gray",
                          type_confidence=0.9, colour_confidence=0.8)  # fmt: skip
        out.append(Sighting(event_id=new_event_id(), camera_id="cam-1",
                            captured_at=time.time(), vehicle=vehicle, plate=plate))  # fmt: skip
    return out


def _timed(func: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = func()
    return result, time.perf_counter() - started


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), in MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _import_and_build(
    listed: list[str], rng: random.Random, partial: int
) -> tuple[Matcher, dict[str, Any]]:
    """Import a CSV export into a DuckDB file, then build the matcher from a fresh connection."""
    with tempfile.TemporaryDirectory(prefix="varta-bench-") as tmp:
        export, db = Path(tmp) / "export.csv", str(Path(tmp) / "bench.duckdb")
        write_export(export, listed, rng, partial)
        database = Database(db)
        try:
            repo = WatchlistRepository(database)
            repo.save_list(ListSettings(name="national", default_priority=3))
            report, import_s = _timed(lambda: import_file(repo, "national", export, full=True))
        finally:
            database.close()
        gc.collect()
        rss_before = _rss_mb()
        database = Database(db)
        try:
            matcher, build_s = _timed(
                lambda: Matcher.from_repository(WatchlistRepository(database))
            )
        finally:
            database.close()
    gc.collect()
    return matcher, {
        "import_s": round(import_s, 2),
        "import_rows": report.rows,
        "import_rejected": report.rejected,
        "build_s": round(build_s, 2),
        "matcher_rss_mb": round(_rss_mb() - rss_before, 1),
    }


def run(entries: int, partial: int, count: int, hit_rate: float, seed: int = 7) -> dict[str, Any]:
    """Run the benchmark and return its measurements.

    ``p50_us``/``p99_us`` are wall time per ``match`` call; ``cpu_*`` are the thread's CPU
    time, which other processes on a shared machine do not inflate.
    """
    load = os.getloadavg()[0]
    rng = random.Random(seed)
    listed = plates(rng, entries)
    matcher, result = _import_and_build(listed, rng, partial)
    probes = sightings(rng, listed, count, hit_rate)
    for probe in probes[:500]:  # warm up
        matcher.match(probe)
    wall: list[float] = []
    cpu: list[float] = []
    matched = hits = 0
    for probe in probes:
        cpu_start, started = time.thread_time_ns(), time.perf_counter_ns()
        found = matcher.match(probe)
        wall.append((time.perf_counter_ns() - started) / 1000)
        cpu.append((time.thread_time_ns() - cpu_start) / 1000)
        matched += bool(found)
        hits += len(found)
    wall.sort()
    cpu.sort()
    return {
        "entries": len(matcher),
        "partial_entries": partial,
        **result,
        "sightings": count,
        "plate_texts_per_sighting": round(
            statistics.fmean(2 + len(p.plate.candidates) for p in probes if p.plate), 2
        ),
        "sightings_matched": matched,
        "matches": hits,
        "p50_us": round(percentile(wall, 0.5), 1),
        "p99_us": round(percentile(wall, 0.99), 1),
        "p999_us": round(percentile(wall, 0.999), 1),
        "max_us": round(percentile(wall, 1.0), 1),
        "mean_us": round(statistics.fmean(wall), 1),
        "cpu_p50_us": round(percentile(cpu, 0.5), 1),
        "cpu_p99_us": round(percentile(cpu, 0.99), 1),
        "index_arrays_mb": round(matcher.index_bytes / 2**20, 1),
        "rss_mb": round(_rss_mb(), 1),
        "load_avg_1m_at_start": round(load, 2),
    }
