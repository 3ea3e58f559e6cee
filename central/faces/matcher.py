"""Cosine top-k search of face embeddings against the enrolled watchlist gallery.

The gallery is one L2-normalised float32 matrix [rows, 256] with one row per enrolled
photo and an ``owner`` array naming each row's person; a person enrolled from several
photos scores the best of their rows. A search is a matrix-vector product and an
``argpartition``: no index to train, exact scores.

Large galleries: the matrix-vector product reads the whole matrix from memory for every
search (100,000 x 256 float32 is 102 MB, 10-20 ms on the shared 2-core box). Above
``prefilter_rows`` rows the gallery also keeps the rows projected onto their top
``prefilter_dims`` principal axes (PCA of the gallery); a search first scores that small
matrix, keeps the best ``prefilter_keep`` rows and scores only those exactly. A wanted
person's face scores far above everyone else's (same person 0.53-0.95 on the development
sets, different people at most 0.25), so the prefilter keeps them; ``varta bench
face-search`` measures how often it keeps a planted match and the exact path's times.
On random vectors (the prefilter's worst case) with a planted match at cosine 0.6, keeping
2,048 rows found it first 99.97 % of the time (1,024 rows: 99.8 %, 96 axes: slower by
half for no gain at 2,048), at a p99 under 3 ms for 100,000 persons.

Every candidate carries the gallery's ``version`` (the watchlist version it was built
from), so an alert can say which list a match was checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

# Calibrated with `varta bench faces` on faces-dev and faces-dev-2 (see README): the
# highest different-person score was 0.25 and the lowest same-person score 0.53; 0.40
# gave no false match among their 313 different-person pairs (FAR < 1/313) and kept
# every same-person pair.
DEFAULT_THRESHOLD: Final = 0.40


@dataclass(frozen=True)
class FaceCandidate:
    """One enrolled person a face resembles."""

    person_id: str
    score: float
    watchlist_version: int


@dataclass
class FaceGallery:
    """Enrolled embeddings, searchable; immutable once built (rebuild on a new version).

    Args:
        embeddings: [rows, dim] float32; normalised here.
        owners: the person id of each row.
        version: the watchlist version the rows come from.
        prefilter_rows: galleries with more rows than this use the PCA prefilter.
        prefilter_dims: principal axes the prefilter keeps.
        prefilter_keep: rows the prefilter passes to the exact score.
    """

    embeddings: NDArray[np.float32]
    owners: Sequence[str]
    version: int = 0
    prefilter_rows: int = 20_000
    prefilter_dims: int = 64
    prefilter_keep: int = 2048
    _persons: NDArray[np.int64] = field(init=False, repr=False)
    _names: list[str] = field(init=False, repr=False)
    _most_rows: int = field(init=False, repr=False)
    _axes: NDArray[np.float32] | None = field(init=False, repr=False, default=None)
    _projected: NDArray[np.float32] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        matrix = np.asarray(self.embeddings, dtype=np.float32)
        if matrix.ndim != 2 or len(matrix) != len(self.owners):
            raise ValueError(
                f"expected a [rows, dim] matrix with one owner per row, got shape "
                f"{matrix.shape} and {len(self.owners)} owners"
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.embeddings = np.ascontiguousarray(matrix / np.maximum(norms, 1e-12))
        self._names = sorted(set(self.owners))
        index = {name: i for i, name in enumerate(self._names)}
        self._persons = np.array([index[o] for o in self.owners], dtype=np.int64)
        counts = np.bincount(self._persons) if len(self._persons) else np.zeros(1, np.int64)
        self._most_rows = int(counts.max()) if len(counts) else 1
        if len(self.embeddings) > self.prefilter_rows:
            self._build_prefilter()

    def _build_prefilter(self) -> None:
        sample = self.embeddings[:: max(1, len(self.embeddings) // 10_000)]
        _, _, vt = np.linalg.svd(sample - sample.mean(axis=0), full_matrices=False)
        self._axes = np.ascontiguousarray(vt[: self.prefilter_dims].T.astype(np.float32))
        self._projected = np.ascontiguousarray(self.embeddings @ self._axes)

    def __len__(self) -> int:
        """Enrolled persons."""
        return len(self._names)

    @property
    def rows(self) -> int:
        """Enrolled embeddings (photos)."""
        return len(self.embeddings)

    def search(
        self, query: NDArray[np.floating], k: int = 5, threshold: float | None = None
    ) -> list[FaceCandidate]:
        """The best ``k`` persons for ``query``, best first, each with its best score.

        Args:
            query: one embedding (float16 or float32; normalised here).
            k: persons to return, at most.
            threshold: keep only scores at or above it (None: keep all ``k``).
        """
        if not self.rows or k <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.embeddings.shape[1]:
            raise ValueError(
                f"query has {vector.shape[0]} values, the gallery {self.embeddings.shape[1]}"
            )
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        rows, scores = self._score(vector, k * self._most_rows)
        return self._best_persons(rows, scores, k, threshold)

    def _score(
        self, vector: NDArray[np.float32], want: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Row indices and exact scores of (at least) the ``want`` best rows."""
        if self._axes is not None and self._projected is not None:
            rough = self._projected @ (vector @ self._axes)
            keep = min(max(self.prefilter_keep, want), len(rough))
            # A cut at the score the best ``keep`` rows would pass if the rough scores
            # were normal (a comparison is ten times cheaper than an argpartition);
            # when it lets too few through, the argpartition decides.
            sample = rough[:: max(1, len(rough) // 4096)]
            cut = float(sample.mean() + self._z_keep(keep, len(rough)) * sample.std())
            rows = np.flatnonzero(rough >= cut)
            if len(rows) < want or len(rows) > 4 * keep:
                rows = np.argpartition(rough, len(rough) - keep)[len(rough) - keep :]
            return rows.astype(np.int64), self.embeddings[rows] @ vector
        scores = self.embeddings @ vector
        want = min(want, len(scores))
        rows = np.argpartition(scores, len(scores) - want)[len(scores) - want :]
        return rows.astype(np.int64), scores[rows]

    @staticmethod
    def _z_keep(keep: int, rows: int) -> float:
        """The standard normal quantile above which a share ``keep / rows`` lies."""
        from statistics import NormalDist

        return NormalDist().inv_cdf(1.0 - min(0.5, keep / rows))

    def _best_persons(
        self,
        rows: NDArray[np.int64],
        scores: NDArray[np.float32],
        k: int,
        threshold: float | None,
    ) -> list[FaceCandidate]:
        order = np.argsort(-scores)
        seen: set[int] = set()
        out: list[FaceCandidate] = []
        for i in order:
            score = float(scores[i])
            if threshold is not None and score < threshold:
                break
            person = int(self._persons[rows[i]])
            if person in seen:
                continue
            seen.add(person)
            out.append(FaceCandidate(self._names[person], round(score, 4), self.version))
            if len(out) == k:
                break
        return out


def decode_embedding(data: bytes, dim: int) -> NDArray[np.float32]:
    """A ``FaceObservation`` embedding (little-endian float16) as float32.

    Raises:
        ValueError: the bytes do not hold ``dim`` float16 values.
    """
    if len(data) != 2 * dim:
        raise ValueError(f"embedding has {len(data)} bytes, expected {2 * dim} for dim {dim}")
    return np.frombuffer(data, dtype="<f2").astype(np.float32)
