"""Calibrated plate confidence: the probability that a reported plate is read exactly.

The reader's own confidence (:func:`shared.plates.candidates`: the geometric mean of the
OCR character probabilities times a format prior) ranks reads within one photo well but
is no probability: a generic read (a US plate) tops out at 0.4 by construction while
being right nine times in ten, and a US plate forced into a Polish layout scores 0.55.
:class:`PlateCalibrator` maps a read to the probability that its text is the plate's,
with a logistic model (Platt scaling with a few more inputs) over :func:`features`:

- the reader's confidence and the lowest and mean OCR character probabilities (logits);
- whether the read is the generic fallback rather than a named format;
- the margin to the runner-up candidate (log ratio): a read whose second reading is
  almost as likely is a coin toss between the two;
- the text height in pixels (log): small text misreads more;
- the reader's confidence (logit) again for named-format reads only: the reader's scale
  means something else for a read the grammar shaped than for the generic fallback;
- per format family (:func:`family`: US layouts, other European formats) an offset and
  the reader's confidence once more: a US or Slovak read at the reader's 0.9 is right
  less often than a Ukrainian one, and each family's curve is fitted on its own reads
  (with Ukrainian formats as the reference), so one family's errors do not hold another
  below the alert threshold.

The weights live in ``plate_calibration.json`` next to this module, written by
``varta bench calibrate`` with their provenance (data sets, counts, date, held-out
figures). Evaluating the model is a dot product: no cost worth measuring per read.

Only the confidence that leaves the agent is calibrated (:meth:`PlateCalibrator.apply`
at sighting time); the reader's gate, ranking and the track vote keep the reader's own
scale. A track's plate gets the best calibrated confidence of the reads that say the
voted text (:meth:`PlateCalibrator.apply_track`): agreeing reads of one track are not
independent evidence (one dirty glyph misreads the same way in every frame), so they
do not multiply into a higher probability.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from shared import plates
from shared.wire import Plate, PlateCandidate

#: Names of :func:`features`, in order (the first is the intercept).
FEATURES: Final = (
    "bias",
    "logit_confidence",
    "logit_min_char",
    "logit_mean_char",
    "generic",
    "log_margin",
    "log_height",
    "named_logit_confidence",
    "us",
    "us_logit_confidence",
    "european",
    "european_logit_confidence",
)
#: Format families with their own offset and slope (:func:`family`).
FAMILIES: Final = ("ua", "us", "european", "generic")
DEFAULT_PATH: Final = Path(__file__).with_name("plate_calibration.json")
SCHEMA: Final = 2
_EPS: Final = 1e-3
_MAX_MARGIN: Final = 3.0  # log ratio to the runner-up beyond which more says nothing
_HEIGHT_RANGE: Final = (8.0, 200.0)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def features(plate: Plate) -> list[float]:
    """The calibration inputs of one read (see the module docstring), :data:`FEATURES`."""
    chars = [p for p in plate.char_confidences if p > 0] or [plate.confidence]
    others = [c.confidence for c in plate.candidates if c.text != plate.text]
    runner_up = max(others, default=0.0)
    margin = math.log(max(plate.confidence, _EPS) / max(runner_up, _EPS))
    height = 0.0
    if plate.box is not None:
        height = min(max(plate.box[3] - plate.box[1], _HEIGHT_RANGE[0]), _HEIGHT_RANGE[1])
    generic = plate.format in ("", plates.GENERIC)
    kind = family(plate.format)
    conf = _logit(plate.confidence)
    return [
        1.0,
        _logit(plate.confidence),
        _logit(min(chars)),
        _logit(sum(chars) / len(chars)),
        1.0 if generic else 0.0,
        min(margin, _MAX_MARGIN),
        math.log(height) if height else math.log(_HEIGHT_RANGE[0]),
        0.0 if generic else conf,
        1.0 if kind == "us" else 0.0,
        conf if kind == "us" else 0.0,
        1.0 if kind == "european" else 0.0,
        conf if kind == "european" else 0.0,
    ]


def family(format_name: str) -> str:
    """The format family of a read, each calibrated with its own offset and slope:
    ``ua`` (Ukrainian formats), ``us`` (US layouts), ``european`` (the other named
    formats) or ``generic`` (the fallback)."""
    if format_name.startswith("ua"):
        return "ua"
    if format_name == plates.US:
        return "us"
    if format_name in ("", plates.GENERIC):
        return "generic"
    return "european"


@dataclass(frozen=True, slots=True)
class PlateCalibrator:
    """A fitted logistic model from :func:`features` to P(read exact).

    Attributes:
        weights: One weight per :data:`FEATURES` entry, on standardised inputs.
        mean: Per-feature mean used to standardise (1 for the intercept is not shifted).
        scale: Per-feature standard deviation used to standardise.
        alert_threshold: The calibrated confidence at or above which a read may be
            matched against strict lists (see ``docs/plate-confidence.md``).
        provenance: Where the weights come from (data sets, counts, date, held-out
            figures), as written by ``varta bench calibrate``.
    """

    weights: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    alert_threshold: float
    provenance: dict[str, Any]

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> PlateCalibrator:
        """Read a parameter file written by :meth:`save`.

        Raises:
            ValueError: The file is not a calibration of these features.
        """
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA or tuple(data.get("features", ())) != FEATURES:
            raise ValueError(
                f"{path}: expected schema {SCHEMA} with features {list(FEATURES)}, "
                f"got schema {data.get('schema')!r} with {data.get('features')!r}"
            )
        return cls(
            weights=tuple(float(w) for w in data["weights"]),
            mean=tuple(float(m) for m in data["mean"]),
            scale=tuple(float(s) for s in data["scale"]),
            alert_threshold=float(data["alert_threshold"]),
            provenance=dict(data.get("provenance", {})),
        )

    def save(self, path: Path = DEFAULT_PATH) -> None:
        """Write the parameters and their provenance as JSON."""
        data = {
            "schema": SCHEMA,
            "features": list(FEATURES),
            "weights": [round(w, 6) for w in self.weights],
            "mean": [round(m, 6) for m in self.mean],
            "scale": [round(s, 6) for s in self.scale],
            "alert_threshold": self.alert_threshold,
            "provenance": self.provenance
            | {"written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def probability(self, x: Sequence[float]) -> float:
        """P(read exact) for one feature vector."""
        z = sum(
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, x, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def apply(self, plate: Plate) -> Plate:
        """The read with its calibrated confidence; candidates keep their ratio to it."""
        calibrated = round(self.probability(features(plate)), 4)
        ratio = calibrated / max(plate.confidence, _EPS)
        return msgspec.structs.replace(
            plate,
            confidence=calibrated,
            candidates=[
                PlateCandidate(c.text, round(min(c.confidence * ratio, calibrated), 4))
                for c in plate.candidates
            ],
        )

    def apply_track(self, voted: Plate, reads: Sequence[Plate]) -> Plate:
        """A track's voted plate with the best calibrated confidence among the reads
        that say its text (the voted plate's own, when none does)."""
        agreeing = [r for r in reads if r.text == voted.text]
        if not agreeing:
            return self.apply(voted)
        best = max(self.probability(features(r)) for r in agreeing)
        calibrated = round(best, 4)
        ratio = calibrated / max(voted.confidence, _EPS)
        return msgspec.structs.replace(
            voted,
            confidence=calibrated,
            candidates=[
                PlateCandidate(c.text, round(min(c.confidence * ratio, calibrated), 4))
                for c in voted.candidates
            ],
        )
