"""Face recognition accuracy on labelled photo sets: verification and identification.

``ground_truth.csv`` has ``file`` and ``identities`` (or ``identity``), several separated
by ``;``. Every face the detector finds is embedded (the quality gate is the edge's policy
and is not applied here; ``faces_below_gate`` says how many it would have refused).
Photos of one labelled person contribute their largest face; photos of several people
only count towards ``faces_missed`` (which face is whom is not labelled).

Verification pairs come from ``pairs.csv`` (``file_a,file_b,same_person``) when present,
otherwise every pair of single-person photos. ``tar_at_far_X`` is the share of same-person
pairs scoring above the lowest threshold that lets at most a share X of different-person
pairs through; with fewer than 1/X different-person pairs that means none
(``far_resolution`` says how fine FAR can be measured). ``rank1`` enrols the first photo
(by file name) of each person and queries the gallery with each of their other photos.
"""

from __future__ import annotations

import csv
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from central.faces.matcher import DEFAULT_THRESHOLD, FaceGallery


@dataclass
class DatasetFaces:
    """The single-person embeddings of one data set and what the detector missed."""

    name: str
    embeddings: dict[str, tuple[str, NDArray[np.float32]]] = field(default_factory=dict)
    labelled_faces: int = 0
    faces_missed: int = 0
    faces_found: int = 0
    faces_below_gate: int = 0
    multi_person_photos: int = 0
    seconds: float = 0.0
    pairs: list[tuple[str, str, bool]] | None = None


def _identities(row: dict[str, str]) -> list[str]:
    raw = row.get("identities", row.get("identity", "")) or ""
    return [name.strip() for name in raw.split(";") if name.strip()]


def embed_dataset(folder: Path, analyser: Any) -> DatasetFaces:
    """Detect and embed every labelled photo of ``folder``."""
    import cv2

    out = DatasetFaces(folder.name)
    with (folder / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["file"])
    for row in rows:
        names = _identities(row)
        if not names:
            continue  # no identity given: nothing to measure on it
        image = cv2.imread(str(folder / row["file"]))
        if image is None:
            raise ValueError(f"{folder / row['file']}: cannot read the image")
        start = time.perf_counter()
        faces = analyser(image, embed_refused=True)
        out.seconds += time.perf_counter() - start
        out.labelled_faces += len(names)
        out.faces_found += len(faces)
        out.faces_below_gate += sum(1 for f in faces if f.refused)
        out.faces_missed += max(0, len(names) - len(faces))
        if len(names) > 1:
            out.multi_person_photos += 1
        elif faces and faces[0].embedding is not None:
            out.embeddings[row["file"]] = (names[0], faces[0].embedding)
    pairs_file = folder / "pairs.csv"
    if pairs_file.is_file():
        with pairs_file.open(newline="", encoding="utf-8") as fh:
            out.pairs = [
                (r["file_a"], r["file_b"], r["same_person"].strip().lower() in {"1", "true", "yes"})
                for r in csv.DictReader(fh)
            ]
    return out


def _scores(faces: DatasetFaces) -> tuple[list[float], list[float], int]:
    """Same-person and different-person scores; pairs whose photo had no face."""
    emb = faces.embeddings
    if faces.pairs is None:
        pairs = [(a, b, emb[a][0] == emb[b][0]) for a, b in itertools.combinations(sorted(emb), 2)]
    else:
        pairs = faces.pairs
    genuine: list[float] = []
    impostor: list[float] = []
    unusable = 0
    for a, b, same in pairs:
        if a not in emb or b not in emb:
            unusable += 1
            continue
        (genuine if same else impostor).append(float(emb[a][1] @ emb[b][1]))
    return genuine, impostor, unusable


def tar_at_far(genuine: list[float], impostor: list[float], far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose FAR is at most ``far``."""
    if not genuine or not impostor:
        return 0.0, 1.0
    ordered = sorted(impostor, reverse=True)
    allowed = math.floor(far * len(ordered))
    threshold = ordered[min(allowed, len(ordered) - 1)]
    return sum(g > threshold for g in genuine) / len(genuine), threshold


def equal_error_rate(genuine: list[float], impostor: list[float]) -> float:
    """The error rate where false accepts and false rejects are (closest to) equal."""
    if not genuine or not impostor:
        return 1.0
    best = (2.0, 1.0)
    for t in sorted(set(genuine) | set(impostor)):
        far = sum(i >= t for i in impostor) / len(impostor)
        frr = sum(g < t for g in genuine) / len(genuine)
        best = min(best, (abs(far - frr), (far + frr) / 2))
    return best[1]


def rank1(faces: DatasetFaces) -> tuple[float, int]:
    """(rank-1 rate, queries): enrol each person's first photo, query with the others."""
    enrolled: dict[str, NDArray[np.float32]] = {}
    queries: list[tuple[str, NDArray[np.float32]]] = []
    for file in sorted(faces.embeddings):
        person, vector = faces.embeddings[file]
        if person in enrolled:
            queries.append((person, vector))
        else:
            enrolled[person] = vector
    if not queries:
        return 0.0, 0
    gallery = FaceGallery(np.stack(list(enrolled.values())), list(enrolled))
    hits = sum(gallery.search(v, k=1)[0].person_id == p for p, v in queries)
    return hits / len(queries), len(queries)


def report(faces: DatasetFaces, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """The benchmark's keys for one (or a pooled) data set."""
    genuine, impostor, unusable = _scores(faces)
    tar2, thr2 = tar_at_far(genuine, impostor, 1e-2)
    tar3, thr3 = tar_at_far(genuine, impostor, 1e-3)
    r1, queries = rank1(faces)
    return {
        "dataset": faces.name,
        "tar_at_far_1e-2": round(tar2, 4),
        "tar_at_far_1e-3": round(tar3, 4),
        "eer": round(equal_error_rate(genuine, impostor), 4),
        "rank1": round(r1, 4),
        "ms_per_face": round(faces.seconds * 1000 / max(faces.faces_found, 1), 1),
        "faces_missed": faces.faces_missed,
        "labelled_faces": faces.labelled_faces,
        "faces_below_gate": faces.faces_below_gate,
        "multi_person_photos": faces.multi_person_photos,
        "rank1_queries": queries,
        "same_person_pairs": len(genuine),
        "different_person_pairs": len(impostor),
        "pairs_without_face": unusable,
        "far_resolution": round(1 / len(impostor), 5) if impostor else None,
        "threshold_at_far_1e-2": round(thr2, 4),
        "threshold_at_far_1e-3": round(thr3, 4),
        "same_person_min": round(min(genuine), 4) if genuine else None,
        "different_person_max": round(max(impostor), 4) if impostor else None,
        "match_threshold": threshold,
        "tar_at_match_threshold": round(sum(g >= threshold for g in genuine) / len(genuine), 4)
        if genuine
        else 0.0,
        "far_at_match_threshold": round(sum(i >= threshold for i in impostor) / len(impostor), 5)
        if impostor
        else 0.0,
    }


def pooled(sets: list[DatasetFaces]) -> DatasetFaces:
    """All sets as one (their identities must not overlap); derived pairs only."""
    out = DatasetFaces("+".join(s.name for s in sets))
    for s in sets:
        out.embeddings.update({f"{s.name}/{k}": v for k, v in s.embeddings.items()})
        out.labelled_faces += s.labelled_faces
        out.faces_missed += s.faces_missed
        out.faces_found += s.faces_found
        out.faces_below_gate += s.faces_below_gate
        out.multi_person_photos += s.multi_person_photos
        out.seconds += s.seconds
    return out


def run(
    datasets: list[Path], models_dir: Path | None = None, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Embed every data set, report each and, with several, all pooled."""
    from edge_agent.face_analysis import FaceAnalyser
    from edge_agent.face_models import FaceModels
    from models.store import ModelStore, default_models_dir

    models = FaceModels.load(ModelStore(models_dir or default_models_dir()))
    analyser = FaceAnalyser(models)
    # Warm up: the first inference of each model pays its one-off allocations.
    analyser(np.full((300, 300, 3), 128, np.uint8))
    sets = [embed_dataset(folder, analyser) for folder in datasets]
    if len(sets) == 1:
        return report(sets[0], threshold)
    return {
        "runs": [report(s, threshold) for s in sets],
        "pooled": report(pooled(sets), threshold),
    }
