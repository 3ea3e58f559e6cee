"""Bookkeeping of matches in the making: hits, the vehicle seen, and operator reasons."""

from __future__ import annotations

from typing import NamedTuple

from central.watchlist.model import COLOURS, Substitution, WatchEntry
from shared.wire import Vehicle


class Hit(NamedTuple):
    """A candidate match before it becomes a ``Match`` (cheap to make and compare)."""

    score: float
    row: int
    kind: str
    cand: int
    text: str
    confidence: float
    subs: tuple[Substitution, ...] = ()
    edit: str = ""
    edit_position: int = -1


class Seen(NamedTuple):
    """What edge vision said about the vehicle, in the lists' vocabulary."""

    vtype: str
    vtype_confidence: float
    colour: str
    colour_confidence: float


def vehicle_terms(vehicle: Vehicle | None) -> Seen | None:
    """The sighting's vehicle type and colour (colour synonyms folded), or None."""
    if vehicle is None:
        return None
    colour = vehicle.colour.lower()
    return Seen(
        vehicle.type.lower(),
        vehicle.type_confidence,
        COLOURS.get(colour, colour),
        vehicle.colour_confidence,
    )


def seen_confidence(seen: Seen | None, vtype: str, colour: str) -> float | None:
    """Confidence that the vehicle has the listed type and colour; None when it has not."""
    if seen is None or (vtype and vtype != seen.vtype) or (colour and colour != seen.colour):
        return None
    return min(seen.vtype_confidence if vtype else 1.0, seen.colour_confidence if colour else 1.0)


def describe(hit: Hit, entry: WatchEntry) -> str:
    """A sentence for the operator: which read matched what, and how."""
    listed = entry.plate_raw or entry.plate
    which = f"candidate {hit.cand} {hit.text!r} ({hit.confidence:.2f})"
    if hit.kind == "exact":
        text = f"{which} equals listed {listed!r}"
    elif hit.kind == "confusion":
        text = f"{which} matches listed {listed!r} with OCR-equivalent characters"
    elif hit.kind == "edit":
        at = hit.edit_position
        what = (
            f"an extra {hit.text[at : at + 1]!r}"
            if hit.edit == "insert"
            else f"a missing {entry.plate[at : at + 1]!r}"
        )
        text = f"{which} matches listed {listed!r} with {what} at position {at}"
    elif hit.kind == "pattern":
        text = f"{which} fits pattern {listed!r}"
    else:
        plate = f"with {which} fitting {listed!r}" if hit.cand >= 0 else "(no plate condition)"
        text = f"{entry.vehicle_type or 'vehicle'} {entry.colour} {plate}"
    if hit.subs:
        text += ": " + ", ".join(f"{s.read}->{s.listed} at {s.position}" for s in hit.subs)
    return f"{text} [{entry.list_name}, {entry.category}]"
