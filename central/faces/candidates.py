"""Face candidates: matching at ingest, crops on match only, and the two-person rule.

Public interface (REST and the console call the same methods, so the rule holds for
both)::

    candidates = FaceCandidates(db, audit, watchlist, alerts=engine, crops=fetcher)
    candidates.list_all(state="pending")               # list[Candidate], newest first
    candidates.get(candidate_id)                       # Candidate (NotFound)
    candidates.crop(candidate_id, actor)               # edge crop JPEG or None (audited)
    candidates.confirm(candidate_id, actor)            # 2nd different user: face alert
    candidates.reject(candidate_id, actor, reason)     # final, keeps its reason
    candidates.set_crop(candidate_id, status, jpeg)    # what the agent answered

Ingest (``central/ingest.py``) calls :meth:`FaceCandidates.match` on its own thread for
each ``FaceObservation`` (a numpy search of the current gallery), :meth:`write` inside the
writer job that stores the batch's sightings (so a batch delivered twice stores its
candidates once), and :meth:`committed` after the commit, which queues the crop request.
A face that matches no one is not written anywhere.

The two-person rule: a candidate is confirmed only when two *different* users have
confirmed it; the same user confirming twice is refused (:class:`SameUserTwice`, HTTP
409), and so is confirming a match of a person who has expired or been removed since
(:class:`PersonNotActive`); either may reject it with a reason, which closes it for good.
Police see a face only as the ``face`` alert raised in the transaction of the second
confirmation.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import duckdb

from central.alerts.engine import AlertEngine
from central.audit.log import AuditLog
from central.faces import store
from central.faces.crops import CropResult
from central.faces.matcher import decode_embedding
from central.faces.model import (
    CANDIDATE_STATES,
    CONFIRMATIONS_NEEDED,
    Candidate,
    CropStatus,
    Decision,
    MatchedFace,
)
from central.faces.service import FaceWatchlist, audit_in
from central.store.db import Database
from shared import wire
from shared.errors import Conflict, InvalidRequest, NotFound

log = logging.getLogger(__name__)

CROP_STATUSES: Final = ("ok", "expired", "unreachable")


class CropSource(Protocol):
    """Asks an agent for the crop of one face observation (over its CURVE link); the
    implementation is ``central.faces.crops.CropFetcher``, wired by ``central.app.build``.

    ``status`` ``ok`` with the JPEG; ``expired`` when the agent no longer holds it;
    ``unreachable`` when the agent did not answer.
    """

    def fetch(self, agent_id: str, observation_id: str) -> CropResult:
        """The crop of ``observation_id`` as held by ``agent_id``."""
        ...


class SameUserTwice(Conflict):
    """A user tried to confirm a candidate they had confirmed already (HTTP 409)."""


class PersonNotActive(Conflict):
    """The matched person expired or was removed since: confirming is refused (HTTP 409)."""


class AlreadyDecided(Conflict):
    """The candidate is confirmed or rejected already (HTTP 409)."""


class FaceCandidates:
    """Candidates of face matches and the decisions on them.

    Args:
        db: Central's database.
        audit: The audit log (each use is recorded in the same transaction).
        watchlist: The persons watchlist whose gallery observations are matched against.
        alerts: The alert engine that raises the police-visible ``face`` alert.
        crops: Fetches edge crops of new candidates (None: crops stay ``pending``).
        clock: UNIX time source.
    """

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        watchlist: FaceWatchlist,
        alerts: AlertEngine | None = None,
        crops: CropSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._audit = audit
        self.watchlist = watchlist
        self._alerts = alerts
        self._clock = clock
        self.faces_matched = 0
        self._crops = crops
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # -- ingest --------------------------------------------------------------------------

    def match(self, agent_id: str, obs: wire.FaceObservation) -> MatchedFace | None:
        """The best match of an observation above the threshold, or None (ingest thread).

        Raises:
            ValueError: the embedding does not fit its ``dim`` or the gallery.
        """
        if not self.watchlist.gallery().rows:
            return None
        found = self.watchlist.match(decode_embedding(obs.embedding, obs.dim))
        if not found:
            return None
        best = found[0]
        box = tuple(float(v) for v in obs.box)
        return MatchedFace(
            candidate_id=obs.event_id,
            agent_id=agent_id,
            camera_id=obs.camera_id,
            captured_at=obs.captured_at,
            box=(box[0], box[1], box[2], box[3]),
            quality=float(obs.quality),
            person_id=best.person_id,
            score=best.score,
            watchlist_version=best.watchlist_version,
            embedding=bytes(obs.embedding),
            model=obs.model,
        )

    def write(
        self, con: duckdb.DuckDBPyConnection, faces: list[MatchedFace], received_at: float
    ) -> list[MatchedFace]:
        """Store matched faces as pending candidates and audit each (writer thread, inside
        the ingest transaction); returns the ones new to the database."""
        new = set(store.insert_candidates(con, faces, received_at))
        stored = [f for f in faces if f.candidate_id in new]
        for f in stored:
            audit_in(
                con,
                self._audit,
                received_at,
                "system",
                "faces.matched",
                f"face-candidate:{f.candidate_id}",
                "",
                {
                    "observation_id": f.candidate_id,
                    "person_id": f.person_id,
                    "score": f.score,
                    "watchlist_version": f.watchlist_version,
                    "agent_id": f.agent_id,
                    "camera_id": f.camera_id,
                },
            )
        return stored

    def committed(self, faces: Iterable[MatchedFace]) -> None:
        """After the ingest commit: count the new candidates and ask for their crops."""
        for f in faces:
            self.faces_matched += 1
            if self._crops is not None:
                self._queue.put((f.agent_id, f.candidate_id))

    # -- crops ---------------------------------------------------------------------------

    def set_fetcher(self, crops: CropSource | None) -> None:
        """Wire the crop fetcher (before :meth:`start`; it may need the running ingest)."""
        if self._thread is not None:
            raise RuntimeError("set the crop fetcher before starting the crop worker")
        self._crops = crops

    def start(self) -> None:
        """Start the crop worker (when a fetcher is wired); candidates still waiting for
        their crop (central restarted meanwhile) are asked for again first."""
        if self._crops is None or self._thread is not None:
            return
        with self._db.reader() as con:
            for job in store.crops_to_fetch(con):  # asked for before a restart, or not yet
                self._queue.put(job)
        self._thread = threading.Thread(target=self._run, name="face-crops", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether crop requests are served (true when no fetcher is wired)."""
        return self._crops is None or (self._thread is not None and self._thread.is_alive())

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the crop request in hand and stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        assert self._crops is not None
        while (job := self._queue.get()) is not None:
            agent_id, candidate_id = job
            try:
                result = self._crops.fetch(agent_id, candidate_id)
            except Exception as err:  # a failing fetcher must not stop later requests
                log.warning("crop request for %s failed: %s", candidate_id, err)
                result = CropResult("unreachable")
            try:
                self.set_crop(candidate_id, result.status, result.jpeg)
            except Exception:
                log.exception("storing the crop of %s failed", candidate_id)

    def set_crop(self, candidate_id: str, status: CropStatus, jpeg: bytes | None) -> None:
        """Store what the agent answered for a candidate's crop.

        Raises:
            InvalidRequest: unknown status, or ``ok`` without a JPEG.
        """
        if status not in CROP_STATUSES:
            raise InvalidRequest(f"crop status: expected one of {CROP_STATUSES}, got {status!r}")
        if (status == "ok") != (jpeg is not None):
            raise InvalidRequest("crop: a JPEG comes with status 'ok' and only with it")
        now = self._clock()
        self._db.writer.call(lambda con: store.set_crop(con, candidate_id, status, jpeg, now))

    # -- reading -------------------------------------------------------------------------

    def list_all(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Candidate]:
        """Candidates, newest first; ``state`` pending, confirmed or rejected.

        Raises:
            InvalidRequest: unknown state or bad paging.
        """
        if state is not None and state not in CANDIDATE_STATES:
            raise InvalidRequest(
                f"state: expected one of {', '.join(CANDIDATE_STATES)}, got {state!r}"
            )
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidRequest(f"limit 1..1000 and offset >= 0 expected, got {limit}, {offset}")
        with self._db.reader() as con:
            return store.list_candidates(con, state, limit, offset)

    def get(self, candidate_id: str) -> Candidate:
        """One candidate with its decisions.

        Raises:
            NotFound: no such candidate.
        """
        with self._db.reader() as con:
            found = store.get_candidate(con, candidate_id)
        if found is None:
            raise NotFound(f"no face candidate with id {candidate_id!r}")
        return found

    def crop(self, candidate_id: str, actor: str) -> bytes | None:
        """The edge crop of a candidate when it was fetched (see ``crop_status``); each
        view by a user is audited (``faces.crop.view``), as every evidence view is."""
        with self._db.reader() as con:
            jpeg = store.crop_jpeg(con, candidate_id)
        if jpeg is not None and actor:
            self._audit.record(
                actor,
                "faces.crop.view",
                f"face-candidate:{candidate_id}",
                "",
                {"observation_id": candidate_id},
            )
        return jpeg

    # -- the two-person rule -------------------------------------------------------------

    def confirm(self, candidate_id: str, actor: str) -> Candidate:
        """Record ``actor``'s confirmation; the second by a different user confirms the
        candidate and raises the police ``face`` alert in the same transaction.

        Raises:
            NotFound: no such candidate.
            AlreadyDecided: it is confirmed or rejected already.
            SameUserTwice: ``actor`` confirmed it before.
        """
        now = self._clock()
        self._db.writer.call(lambda con: self._confirm(con, candidate_id, actor, now))
        return self.get(candidate_id)

    def reject(self, candidate_id: str, actor: str, reason: str) -> Candidate:
        """Reject a candidate with a reason; final (it never reaches police). Its embedding
        and crop are deleted: it was judged not to be the wanted person.

        Raises:
            InvalidRequest: no reason.
            NotFound: no such candidate.
            AlreadyDecided: it is confirmed or rejected already.
        """
        why = (reason or "").strip()
        if len(why) < 3:
            raise InvalidRequest(
                f"reason: rejecting a face candidate requires a reason (at least 3 "
                f"characters), got {reason!r}"
            )
        now = self._clock()
        self._db.writer.call(lambda con: self._reject(con, candidate_id, actor, why, now))
        return self.get(candidate_id)

    def lapse(self, days: float, actor: str = "system") -> int:
        """Reject, as ``actor``, every candidate nobody decided within ``days`` of its
        arrival, so that a forgotten match does not keep a face's embedding and crop
        forever (the rejection deletes them; the score, decisions and reason stay).
        Returns how many lapsed."""
        now = self._clock()
        with self._db.reader() as con:
            stale = store.undecided_before(con, now - days * 86_400)
        why = f"not decided within {days:g} days (retention.face_pending_days)"
        lapsed = 0
        for candidate_id in stale:
            try:
                self._db.writer.call(
                    functools.partial(
                        self._reject, candidate_id=candidate_id, actor=actor, why=why, now=now
                    )
                )
            except AlreadyDecided:
                continue  # decided by a user meanwhile
            lapsed += 1
        if lapsed:
            log.info("face candidates: %d undecided for %g days rejected", lapsed, days)
        return lapsed

    def _open(self, con: duckdb.DuckDBPyConnection, candidate_id: str) -> Candidate:
        found = store.get_candidate(con, candidate_id)
        if found is None:
            raise NotFound(f"no face candidate with id {candidate_id!r}")
        if found.state != "pending":
            raise AlreadyDecided(f"face candidate {candidate_id} is {found.state} already")
        return found

    def _confirm(
        self, con: duckdb.DuckDBPyConnection, candidate_id: str, actor: str, now: float
    ) -> None:
        cand = self._open(con, candidate_id)
        if actor in cand.confirmers:
            raise SameUserTwice(
                f"you ({actor}) already confirmed face candidate {candidate_id}; "
                "a second, different user must confirm it (two-person rule)"
            )
        person = store.get_person(con, cand.person_id)
        status = person.status(now) if person is not None else "removed"
        if status != "active":
            raise PersonNotActive(
                f"face candidate {candidate_id}: the person is {status} on the watchlist "
                "(no legal basis to act on the match any more); it can only be rejected"
            )
        store.add_decision(con, candidate_id, Decision(actor, "confirm", "", now))
        confirmers = [*cand.confirmers, actor]
        alert_id = None
        if len(confirmers) >= CONFIRMATIONS_NEEDED:
            alert_id = self._raise_alert(con, cand, confirmers, actor)
            store.decide(con, candidate_id, "confirmed", now, alert_id=alert_id)
        self._audit_decision(con, cand, actor, "confirm", "", confirmers, now, alert_id)

    def _reject(
        self, con: duckdb.DuckDBPyConnection, candidate_id: str, actor: str, why: str, now: float
    ) -> None:
        cand = self._open(con, candidate_id)
        store.add_decision(con, candidate_id, Decision(actor, "reject", why, now))
        store.decide(con, candidate_id, "rejected", now, reason=why)
        self._audit_decision(con, cand, actor, "reject", why, cand.confirmers, now, None)

    def _raise_alert(
        self, con: duckdb.DuckDBPyConnection, cand: Candidate, confirmers: list[str], actor: str
    ) -> int | None:
        if self._alerts is None:
            return None
        person = store.get_person(con, cand.person_id)
        details: dict[str, Any] = {
            "candidate_id": cand.candidate_id,
            "observation_id": cand.candidate_id,
            "person_id": cand.person_id,
            "person": person.name if person else cand.person_name,
            "reason": person.reason if person else "",
            "legal_basis": person.legal_basis if person else "",
            "score": cand.score,
            "watchlist_version": cand.watchlist_version,
            "agent_id": cand.agent_id,
            "camera_id": cand.camera_id,
            "captured_at": cand.captured_at,
            "confirmed_by": confirmers,
            "crop": "crop expired" if cand.crop_status == "expired" else cand.crop_status,
        }
        name = details["person"] or cand.person_id
        alert = self._alerts.raise_face(
            con,
            cand.candidate_id,
            f"Wanted person {name} seen at {cand.camera_id} (score {cand.score:.2f})",
            details,
            cand.captured_at,
            actor,
        )
        return alert.alert_id

    def _audit_decision(
        self,
        con: duckdb.DuckDBPyConnection,
        cand: Candidate,
        actor: str,
        decision: str,
        reason: str,
        confirmers: list[str],
        now: float,
        alert_id: int | None,
    ) -> None:
        decisions = [
            {"actor": d.actor, "decision": d.decision, "reason": d.reason} for d in cand.decisions
        ]
        decisions.append({"actor": actor, "decision": decision, "reason": reason})
        audit_in(
            con,
            self._audit,
            now,
            actor,
            f"faces.candidate.{decision}",
            f"face-candidate:{cand.candidate_id}",
            reason,
            {
                "observation_id": cand.candidate_id,
                "person_id": cand.person_id,
                "score": cand.score,
                "watchlist_version": cand.watchlist_version,
                "confirmers": confirmers,
                "decisions": decisions,
                "alert_id": alert_id,
            },
        )
