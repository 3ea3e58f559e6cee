"""The evidence package: one ZIP an investigator hands on, checkable by anyone with Varta.

Layout (every path relative to the ZIP's root)::

    manifest.json     format, kind, subject, who exported it, when and why, and
                      ``files``: name, bytes and sha256 of every other file below
    manifest.sha256   sha256 of manifest.json (``<hex>  manifest.json``): the package's
                      top-level hash, to note in the case file
    sightings.csv     the sightings, one row each (plate as read and as the registry writes it)
    sightings.json    the same sightings, every stored field
    alert.json        (alert) the alert as central holds it
    history.json      (alert) its state changes and actions, oldest first
    journey.json      (journey) the stops in time order with gaps and the cameras passed
    cameras.json      the configured position and heading of each camera in the package
    audit.json        the audit rows that concern the subject, each with ``prev_hash`` and
                      ``hash`` as stored in central's chain (``central/audit/log.py``)
    thumbs/...        the stored crops, ``<event id>-<n>-<role>.jpg``

:func:`verify_package` checks the top-level hash, every file's hash, that no file was added
or removed, and recomputes each audit row's chain hash with ``central.audit.log.row_hash``
(rows that follow one another in the chain must also link).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from central.audit.log import row_hash
from shared.plates import parse, registry_form

FORMAT: Final = "varta-evidence/1"
MANIFEST: Final = "manifest.json"
TOP_HASH: Final = "manifest.sha256"
CSV_COLUMNS: Final = (
    "event_id",
    "captured_at",
    "camera_id",
    "agent_id",
    "plate",
    "plate_registry",
    "plate_confidence",
    "vehicle_type",
    "colour",
    "thumbnails",
)


@dataclass(frozen=True)
class AuditRow:
    """One audit row exactly as stored (the fields its chain hash covers, and the hashes)."""

    id: int
    at_us: int
    actor: str
    action: str
    target: str
    reason: str
    details: str
    prev_hash: str
    hash: str


@dataclass
class Contents:
    """What goes into a package, gathered by ``EvidenceService``.

    Attributes:
        kind: ``alert`` or ``journey``.
        subject: ``alert:<id>`` or ``plate:<plate>``.
        actor: Who exported it.
        reason: Why (case number or purpose).
        created_at: When (UNIX seconds).
        sightings: Sighting rows (``SIGHTING_COLUMNS`` shape), oldest first.
        audit: The audit rows concerning the subject, in chain order.
        documents: Further JSON documents by file name (``alert.json``, ``history.json``...).
        thumbnails: JPEG bytes by file name under ``thumbs/``.
        missing: Thumbnails that could not be read (purged), named in the manifest.
    """

    kind: str
    subject: str
    actor: str
    reason: str
    created_at: float
    sightings: list[dict[str, Any]]
    audit: list[AuditRow]
    documents: dict[str, Any] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()


def _iso(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def registry_plate(text: str | None) -> str:
    """A plate as its registry writes it (Cyrillic for Ukrainian formats)."""
    if not text:
        return ""
    return registry_form(text) if parse(text).format.startswith("ua_") else text


def sightings_csv(rows: list[dict[str, Any]]) -> bytes:
    """The sightings as CSV (UTF-8, header row, RFC 3339 times in UTC)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        conf = row.get("plate_confidence")
        writer.writerow(
            [
                row["event_id"],
                _iso(row["captured_at"]),
                row["camera_id"],
                row["agent_id"],
                row.get("plate") or "",
                registry_plate(row.get("plate")),
                "" if conf is None else f"{conf:.4f}",
                row.get("vehicle_type") or "",
                row.get("colour") or "",
                len(row.get("thumbnails") or []),
            ]
        )
    return out.getvalue().encode()


def build_package(contents: Contents) -> bytes:
    """The ZIP of ``contents`` with its manifest and top-level hash."""
    files: dict[str, bytes] = {
        "sightings.csv": sightings_csv(contents.sightings),
        "sightings.json": _json(contents.sightings),
        "audit.json": _json([vars(row) for row in contents.audit]),
    }
    files.update({name: _json(doc) for name, doc in contents.documents.items()})
    files.update({f"thumbs/{name}": data for name, data in contents.thumbnails.items()})
    manifest = {
        "format": FORMAT,
        "kind": contents.kind,
        "subject": contents.subject,
        "exported_by": contents.actor,
        "exported_at": _iso(contents.created_at),
        "reason": contents.reason,
        "sightings": len(contents.sightings),
        "audit_rows": len(contents.audit),
        "missing_thumbnails": contents.missing,
        "files": [
            {"name": name, "bytes": len(data), "sha256": sha256(data)}
            for name, data in sorted(files.items())
        ],
    }
    manifest_bytes = _json(manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, manifest_bytes)
        zf.writestr(TOP_HASH, f"{sha256(manifest_bytes)}  {MANIFEST}\n")
        for name, data in sorted(files.items()):
            # JPEGs are compressed already: stored as they are
            mode = zipfile.ZIP_STORED if name.startswith("thumbs/") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=mode)
    return buf.getvalue()


@dataclass(frozen=True)
class Verdict:
    """What checking a package found.

    Attributes:
        ok: Every hash holds and nothing was added or removed.
        manifest_sha256: The package's top-level hash (as recomputed).
        files: Files checked against the manifest.
        audit_rows: Audit rows whose chain hash was recomputed.
        problems: One line per mismatch, naming the file or audit row.
    """

    ok: bool
    manifest_sha256: str
    files: int
    audit_rows: int
    problems: list[str]


def verify_package(data: bytes) -> Verdict:
    """Check a package made by :func:`build_package` (see the module docstring)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        return Verdict(False, "", 0, 0, [f"not a ZIP file: {err}"])
    with zf:
        names = set(zf.namelist())
        missing = [n for n in (MANIFEST, TOP_HASH) if n not in names]
        if missing:
            return Verdict(False, "", 0, 0, [f"{n} is missing" for n in missing])
        manifest_bytes = zf.read(MANIFEST)
        top = sha256(manifest_bytes)
        problems = _check_top_hash(zf.read(TOP_HASH), top)
        try:
            manifest = json.loads(manifest_bytes)
            listed = {f["name"]: f["sha256"] for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as err:
            return Verdict(False, top, 0, 0, [*problems, f"{MANIFEST} is unreadable: {err}"])
        problems += _check_files(zf, names - {MANIFEST, TOP_HASH}, listed)
        rows, audit_problems = _check_audit(zf, names)
        problems += audit_problems
    return Verdict(not problems, top, len(listed), rows, problems)


def _check_top_hash(stored: bytes, actual: str) -> list[str]:
    noted = stored.decode(errors="replace").split()
    if not noted or noted[0] != actual:
        return [f"{MANIFEST}: sha256 {actual} does not match {TOP_HASH} (manifest changed?)"]
    return []


def _check_files(zf: zipfile.ZipFile, present: set[str], listed: dict[str, str]) -> list[str]:
    problems = []
    for name in sorted(listed):
        if name not in present:
            problems.append(f"{name}: listed in the manifest but missing (removed?)")
        elif sha256(zf.read(name)) != listed[name]:
            problems.append(f"{name}: sha256 does not match the manifest (changed?)")
    problems += [f"{name}: not in the manifest (added?)" for name in sorted(present - set(listed))]
    return problems


def _check_audit(zf: zipfile.ZipFile, names: set[str]) -> tuple[int, list[str]]:
    """Recompute each audit row's chain hash; rows next to each other in the chain must link."""
    if "audit.json" not in names:
        return 0, []
    try:
        rows = [AuditRow(**r) for r in json.loads(zf.read("audit.json"))]
    except (ValueError, TypeError) as err:
        return 0, [f"audit.json is unreadable: {err}"]
    problems = []
    prev: AuditRow | None = None
    for r in rows:
        expected = row_hash(
            r.prev_hash, r.id, r.at_us, r.actor, r.action, r.target, r.reason, r.details
        )
        if expected != r.hash:
            problems.append(f"audit row {r.id}: content does not match its chain hash (edited?)")
        if prev is not None and r.id == prev.id + 1 and r.prev_hash != prev.hash:
            problems.append(f"audit row {r.id}: prev_hash does not match the hash of row {prev.id}")
        prev = r
    return len(rows), problems
