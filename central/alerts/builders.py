"""Building alerts and trail items from matches and from health problems (pure functions)."""

from __future__ import annotations

from typing import Any

from central.alerts.model import Alert, TrailItem
from central.store.sightings import IncomingSighting
from central.watchlist.model import Match
from shared.plates import fold


def thumbnail_urls(event_id: str, count: int) -> list[str]:
    """URLs of a sighting's thumbnails on the sightings API."""
    return [f"/api/v1/sightings/{event_id}/thumbnails/{i}" for i in range(count)]


def watchlist_key(match: Match) -> str:
    """Dedup key: the wanted entry and the plate (listed plate, or the read for patterns)."""
    entry = match.entry
    plate = entry.plate if entry.kind == "plate" else match.candidate
    return f"watchlist:{entry.list_name}:{entry.entry_key}:{plate}"


def trail_item(inc: IncomingSighting, match: Match, *, historical: bool = False) -> TrailItem:
    """The trail entry of a matched sighting (``historical``: found by a past-read match)."""
    s = inc.sighting
    plate = fold(s.plate.text) if s.plate is not None else ""
    return TrailItem(
        event_id=s.event_id,
        agent_id=inc.agent_id,
        camera_id=s.camera_id,
        captured_at=s.captured_at,
        plate=plate,
        score=round(match.score, 4),
        match_kind=match.kind,
        reason=match.reason,
        thumbnails=thumbnail_urls(s.event_id, len(inc.thumbs)),
        historical=historical,
    )


def watchlist_alert(alert_id: int, key: str, match: Match, item: TrailItem, now: float) -> Alert:
    """A new alert for a watchlist match."""
    entry = match.entry
    listed = entry.plate_raw or entry.plate or match.candidate
    return Alert(
        alert_id=alert_id,
        kind="watchlist",
        state="new",
        priority=entry.priority,
        category=entry.category,
        title=f"{entry.category}: {listed} {'was seen' if item.historical else 'seen'} at "
        f"{item.camera_id} ({match.list_name})",
        subject=item.plate or match.candidate,
        dedup_key=key,
        details={
            "list_name": match.list_name,
            "entry_key": entry.entry_key,
            "entry_kind": entry.kind,
            "listed_plate": entry.plate,
            "listed_plate_raw": entry.plate_raw,
            "case_ref": entry.case_ref,
            "entry_reason": entry.reason,
            "vehicle_type": entry.vehicle_type,
            "colour": entry.colour,
            "match_kind": match.kind,
            "score": round(match.score, 4),
            "match_reason": match.reason,
        },
        created_at=now,
        updated_at=now,
        first_seen=item.captured_at,
        last_seen=item.captured_at,
        sightings=1,
        latest=item,
        historical=item.historical,
    )


def system_alert(
    alert_id: int,
    kind: str,
    subject: str,
    title: str,
    details: dict[str, Any],
    priority: int,
    now: float,
) -> Alert:
    """A new alert about central's own health (offline agent or camera, failing webhook)."""
    return Alert(
        alert_id=alert_id,
        kind=kind,
        state="new",
        priority=priority,
        category="system",
        title=title,
        subject=subject,
        dedup_key=f"{kind}:{subject}",
        details=details,
        created_at=now,
        updated_at=now,
        first_seen=now,
        last_seen=now,
    )
