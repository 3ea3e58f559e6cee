"""Evidence export: gather an alert's or a journey's records, audit the export, package them.

No Litestar here: the REST API and the console call the same two methods. Reading an alert
goes through ``AlertService.get`` and a journey through ``SearchService.journey``, so the
export is audited the way viewing them is (``alert.view``, ``search.journey``) and, before
anything is read, as ``evidence.export`` with the reason: the package then carries its own
export row among the audit rows it holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from central.alerts.service import AlertService
from central.audit.sink import AuditSink
from central.config import CameraPlaceConfig
from central.evidence.package import AuditRow, Contents, build_package
from central.search import JourneyQuery, SearchService
from central.search.query import require_reason
from central.store.db import Database
from central.store.sightings import SIGHTING_COLUMNS
from central.store.thumbs import ThumbStore

log = logging.getLogger(__name__)

MAX_AUDIT_ROWS: Final = 10_000


@dataclass(frozen=True)
class Package:
    """A built evidence package.

    Attributes:
        filename: Suggested file name (``evidence-alert-12.zip``).
        data: The ZIP bytes.
    """

    filename: str
    data: bytes


class EvidenceService:
    """Builds evidence packages (reason required, audited).

    Args:
        db: The central database (reads through its reader cursors).
        thumbs: The thumbnail packs.
        audit: Where exports are recorded.
        alerts: Alert reads (audited as views).
        searches: Journeys (audited as searches).
        cameras: Configured camera positions (``cameras.json`` lists those in a package).
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        thumbs: ThumbStore,
        audit: AuditSink,
        alerts: AlertService,
        searches: SearchService,
        cameras: tuple[CameraPlaceConfig, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._thumbs = thumbs
        self._audit = audit
        self._alerts = alerts
        self._searches = searches
        self._places = {c.id: c for c in cameras}
        self._clock = clock

    def alert(self, alert_id: int, actor: str, reason: str | None) -> Package:
        """An alert with its trail's sightings and crops, its history and audit rows.

        Raises:
            InvalidRequest: No reason.
            NotFound: No such alert.
        """
        why = require_reason(reason)
        detail = self._alerts.get(alert_id, actor)
        subject = f"alert:{alert_id}"
        event_ids = [item.event_id for item in detail.trail]
        self._record(actor, subject, why, {"kind": "alert", "sightings": len(event_ids)})
        with self._db.reader() as con:
            rows = con.execute(
                f"SELECT {SIGHTING_COLUMNS} FROM sightings WHERE event_id IN "
                "(SELECT TRY_CAST(unnest(?::VARCHAR[]) AS UUID)) ORDER BY captured_at, event_id",
                [event_ids],
            ).fetchall()
            names = [d[0] for d in con.description or []]
        sightings = [dict(zip(names, r, strict=True)) for r in rows]
        documents = {
            "alert.json": msgspec.to_builtins(detail.alert),
            "history.json": msgspec.to_builtins(detail.history),
            "trail.json": msgspec.to_builtins(detail.trail),
        }
        targets = [subject, *(f"sighting:{e}" for e in event_ids)]
        contents = self._contents("alert", subject, actor, why, sightings, targets, documents)
        return Package(f"evidence-alert-{alert_id}.zip", build_package(contents))

    def journey(self, query: JourneyQuery, actor: str, reason: str | None) -> Package:
        """A vehicle's journey: its sightings and crops in time order, and the audit rows
        of the searches and exports of that plate.

        Raises:
            InvalidRequest: No reason; a bad query.
        """
        why = require_reason(reason)
        subject = f"plate:{query.plate.text}"
        trip = self._searches.journey(query, actor, why)
        self._record(actor, subject, why, {"kind": "journey", "sightings": len(trip.stops)})
        sightings = [stop.sighting for stop in trip.stops]
        documents = {
            "journey.json": {
                "plate": trip.plate,
                "match": query.plate.mode,
                "from": query.start.isoformat() if query.start else None,
                "to": query.end.isoformat() if query.end else None,
                "cameras": trip.cameras,
                "truncated": trip.truncated,
                "stops": [
                    {
                        "event_id": s.sighting["event_id"],
                        "camera_id": s.sighting["camera_id"],
                        "captured_at": s.sighting["captured_at"],
                        "gap_s": s.gap_s,
                        "camera_changed": s.camera_changed,
                    }
                    for s in trip.stops
                ],
            }
        }
        targets = [subject, *(f"sighting:{s['event_id']}" for s in sightings)]
        contents = self._contents("journey", subject, actor, why, sightings, targets, documents)
        return Package(f"evidence-journey-{trip.plate}.zip", build_package(contents))

    def _record(self, actor: str, subject: str, why: str, details: dict[str, Any]) -> None:
        self._audit.record(actor, "evidence.export", target=subject, reason=why, details=details)

    def _contents(
        self,
        kind: str,
        subject: str,
        actor: str,
        why: str,
        sightings: list[dict[str, Any]],
        targets: list[str],
        documents: dict[str, Any],
    ) -> Contents:
        contents = Contents(
            kind=kind,
            subject=subject,
            actor=actor,
            reason=why,
            created_at=self._clock(),
            sightings=sightings,
            audit=self._audit_rows(targets),
            documents=documents,
        )
        used = sorted({row["camera_id"] for row in sightings} & set(self._places))
        documents["cameras.json"] = [self._places[c].model_dump() for c in used]
        for row in sightings:
            row["thumbnails"] = self._crops(row, contents)
        return contents

    def _crops(self, row: dict[str, Any], contents: Contents) -> list[dict[str, Any]]:
        """Copy a sighting's stored crops into ``contents``; its thumbnails as listed in
        sightings.json (the file each is in, or ``missing``)."""
        listed = []
        for n, ref in enumerate(row.get("thumbnails") or []):
            name = f"{row['event_id']}-{n}-{ref['role']}.jpg"
            entry = {"role": ref["role"], "width": ref["width"], "height": ref["height"]}
            try:
                contents.thumbnails[name] = self._thumbs.read(
                    ref["pack"], ref["offset"], ref["length"]
                )
                entry["file"] = f"thumbs/{name}"
            except (OSError, ValueError) as err:
                log.warning("evidence %s: thumbnail %s unreadable: %s", contents.subject, name, err)
                contents.missing.append(name)
                entry["file"] = "missing"
            listed.append(entry)
        return listed

    def _audit_rows(self, targets: list[str]) -> list[AuditRow]:
        """The audit rows whose target is one of ``targets`` (or below one: ``sighting:<id>/
        thumbnail/0``), in chain order, as stored."""
        with self._db.reader() as con:
            rows = con.execute(
                'SELECT id, epoch_us("at"), actor, action, target, reason, details::VARCHAR, '
                "prev_hash, hash FROM audit_log WHERE split_part(target, '/', 1) IN "
                "(SELECT unnest(?::VARCHAR[])) ORDER BY id LIMIT ?",
                [targets, MAX_AUDIT_ROWS],
            ).fetchall()
        return [AuditRow(*r) for r in rows]
