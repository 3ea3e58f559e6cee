"""`varta bench faces`, `face-search` and `edge --face-cameras`: short real runs, keys and
sanity, plus the metric helpers on hand-made scores."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.faces import equal_error_rate, tar_at_far
from central.faces.matcher import DEFAULT_THRESHOLD
from models.store import ModelStore
from varta.cli import app

# Measured with `varta bench faces --dataset ../shared/data/faces-dev --dataset
# ../shared/data/faces-dev-2 --json`: TAR 1.0 at FAR 1e-3 (no different-person pair of 313
# above 0.2542), rank-1 1.0 over 18 queries, every labelled face found.
KEYS = {"tar_at_far_1e-2", "tar_at_far_1e-3", "eer", "rank1", "ms_per_face", "faces_missed"}


@pytest.mark.parametrize(
    ("genuine", "impostor", "far", "tar"),
    [
        ([0.9, 0.8, 0.3], [0.1, 0.2, 0.5], 0.0, 2 / 3),  # nothing above 0.5 but 0.9, 0.8
        ([0.9, 0.8, 0.3], [0.1, 0.2, 0.5], 0.34, 1.0),  # one impostor allowed: cut at 0.2
        ([0.9], [], 0.01, 0.0),
    ],
)
def test_tar_at_far_counts_same_person_pairs_above_the_cut(
    genuine: list[float], impostor: list[float], far: float, tar: float
) -> None:
    assert tar_at_far(genuine, impostor, far)[0] == pytest.approx(tar)


def test_equal_error_rate_is_zero_when_separated_and_half_when_mixed() -> None:
    assert equal_error_rate([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert equal_error_rate([0.1, 0.9], [0.1, 0.9]) == pytest.approx(0.5)


def _bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_bench_faces_meets_the_targets_on_both_development_sets(
    model_store: ModelStore, shared_data: Path
) -> None:
    out = _bench(
        "faces",
        "--dataset", str(shared_data / "faces-dev"),
        "--dataset", str(shared_data / "faces-dev-2"),
        "--models", str(model_store.root),
    )  # fmt: skip
    runs = out["runs"]
    assert isinstance(runs, list) and len(runs) == 2
    for result in [*runs, out["pooled"]]:
        assert set(result) >= KEYS
        assert result["tar_at_far_1e-3"] >= 0.99 and result["rank1"] >= 0.98
        assert result["faces_missed"] == 0 and result["eer"] < 0.02
        assert 0 < result["ms_per_face"] < 10_000
    pooled = out["pooled"]
    assert isinstance(pooled, dict)
    assert pooled["labelled_faces"] == 36 and pooled["different_person_pairs"] >= 300
    # The default threshold sits between the two score populations.
    assert pooled["different_person_max"] < DEFAULT_THRESHOLD < pooled["same_person_min"]
    assert pooled["far_at_match_threshold"] == 0.0 and pooled["tar_at_match_threshold"] == 1.0


def test_bench_face_search_reports_percentiles_and_finds_planted_persons() -> None:
    out = _bench("face-search", "--persons", "30000", "--queries", "100")
    assert {"p50_ms", "p99_ms", "exact_p50_ms", "recall_at_1", "meets_target"} <= set(out)
    assert 0 < out["p50_ms"] <= out["p99_ms"]
    assert out["recall_at_1"] >= 0.97 and out["exact_recall_at_1"] == 1.0
    assert out["embeddings"] == 30000


def test_bench_edge_with_a_face_camera_compares_with_the_same_run_without(
    model_store: ModelStore,
) -> None:
    out = _bench(
        "edge", "--face-cameras", "1", "--cameras", "2", "--frames", "40", "--repeat", "1",
        "--threads", "1", "--models", str(model_store.root),
    )  # fmt: skip
    for name in ("1080p", "720p"):
        assert out[f"fps_{name}"] > 0 and out[f"fps_{name}_no_faces"] > 0
        ratio = out[f"fps_{name}"] / out[f"fps_{name}_no_faces"]
        assert math.isclose(out[f"fps_ratio_faces_{name}"], ratio, rel_tol=0.01)
        assert out[f"face_ms_per_frame_{name}"] > 0
    assert out["peak_rss_mb"] > 0 and out["peak_rss_mb_no_faces"] > 0
    assert out["face_cameras"] == 1
