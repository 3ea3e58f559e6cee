"""Calibrated vehicle-type confidence: the probability that a reported type is right.

The attribute model's softmax (after :data:`edge_agent.attributes.TYPE_PRIOR`) is no
probability of being right on street views: on vehicles-street a type given at 0.5-0.6 was
right 84 % of the time and one at 0.4-0.5 every time, because most of the model's doubt is
between ``car`` and ``van``, which the data sets (and wanted lists, in practice) do not
tell apart. :class:`TypeCalibrator` therefore maps the probability of the type's *family*
(:func:`family_probability`: car and van together; truck; bus) through a logistic curve
(Platt scaling: a slope and an offset on its logit) to P(type right).

The two numbers live in ``type_calibration.json`` next to this module, written by
``varta bench calibrate-types`` from the ``train`` frames of a labelled set, with their
provenance and the figures on the held-out ``test`` frames. Motorcycles keep the
detector's class share: the attribute model never sees them, and the detector's class
was right for every motorcycle found on vehicles-street.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

#: Types that a type's family adds up (car and van are one family).
FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    "car": ("car", "van"),
    "van": ("car", "van"),
    "truck": ("truck",),
    "bus": ("bus",),
}
DEFAULT_PATH: Final = Path(__file__).with_name("type_calibration.json")
SCHEMA: Final = 1
_EPS: Final = 1e-3


def logit(p: float) -> float:
    """log(p / (1 - p)), with ``p`` kept inside [0.001, 0.999]."""
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def family_probability(kind: str, scores: Mapping[str, float]) -> float:
    """The probability the model gives ``kind``'s family (car and van summed).

    Args:
        kind: The reported type.
        scores: The model's probability per type (a frame's softmax or a track's mean).
    """
    total = sum(scores.values())
    if total <= 0:
        return 0.0
    return sum(scores.get(name, 0.0) for name in FAMILIES.get(kind, (kind,))) / total


@dataclass(frozen=True, slots=True)
class TypeCalibrator:
    """P(type right) = sigmoid(slope * logit(family probability) + offset).

    The default (slope 1, offset 0) returns the family probability unchanged.
    """

    slope: float = 1.0
    offset: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> TypeCalibrator:
        """Read a parameter file written by :meth:`save`.

        Raises:
            ValueError: The file is not a type calibration of this schema.
        """
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: expected schema {SCHEMA}, got {data.get('schema')!r}")
        return cls(
            slope=float(data["slope"]),
            offset=float(data["offset"]),
            provenance=dict(data.get("provenance", {})),
        )

    def save(self, path: Path = DEFAULT_PATH) -> None:
        """Write the parameters and their provenance as JSON."""
        data = {
            "schema": SCHEMA,
            "slope": round(self.slope, 6),
            "offset": round(self.offset, 6),
            "provenance": self.provenance
            | {"written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def probability(self, family_p: float) -> float:
        """P(type right) for a family probability."""
        z = self.slope * logit(family_p) + self.offset
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def __call__(self, kind: str, scores: Mapping[str, float]) -> float:
        """The calibrated confidence of ``kind`` given the model's ``scores``."""
        return round(self.probability(family_probability(kind, scores)), 4)


def fit(examples: Sequence[tuple[float, bool]], ridge: float = 1.0) -> tuple[float, float]:
    """Slope and offset of a logistic fit of right/wrong on the logit of the family
    probability, by Newton's method. ``ridge`` pulls the slope towards 1 and the offset
    towards 0 (the identity), so a handful of errors cannot bend the curve far."""
    xs = [logit(p) for p, _ in examples]
    ys = [1.0 if right else 0.0 for _, right in examples]
    slope, offset = 1.0, 0.0
    for _ in range(50):
        g_s = ridge * (slope - 1.0)
        g_o = ridge * offset
        h_ss, h_so, h_oo = ridge, 0.0, ridge
        for x, y in zip(xs, ys, strict=True):
            p = 1.0 / (1.0 + math.exp(-max(min(slope * x + offset, 40.0), -40.0)))
            w = p * (1.0 - p)
            g_s += (p - y) * x
            g_o += p - y
            h_ss += w * x * x
            h_so += w * x
            h_oo += w
        det = h_ss * h_oo - h_so * h_so
        if det <= 0:
            break
        d_s = (h_oo * g_s - h_so * g_o) / det
        d_o = (h_ss * g_o - h_so * g_s) / det
        slope, offset = slope - d_s, offset - d_o
        if abs(d_s) + abs(d_o) < 1e-9:
            break
    return slope, offset


def load_default() -> TypeCalibrator:
    """The shipped calibration, or the identity when no parameter file is present."""
    return TypeCalibrator.load() if DEFAULT_PATH.exists() else TypeCalibrator()
