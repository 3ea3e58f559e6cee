"""Synthetic Ukrainian plates: layouts, the grammar, determinism, and the real reader on them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench import synth_eval
from bench.plates import load_image, load_samples, normalise
from bench.synth import GRAMMAR_FORMATS, SynthOptions, generate, make_sample, random_plate
from bench.synth_plate import FONT_CANDIDATES, PlateSpec, find_font, render
from bench.synth_scene import Background, load_backgrounds
from edge_agent.plate_reader import PPOCRPlateReader
from models.store import ModelStore
from shared.plates import parse
from varta.cli import app

# Measured on the 40-plate set of the end-to-end test below (seed 11: 19 day and 21
# night, 32 one-line and 8 two-line plates, 80-300 px wide, 16 blurred, 10 dirty): 39/40 =
# 97.5 % read exactly with Open DIN, 38/40 with the DejaVu fallback. The threshold leaves
# a margin of three plates. (On 500 plates of every layout, seed 1: 87.4 %; current-format
# plates alone 95.9 %.)
E2E_MIN_EXACT = 0.9


@pytest.fixture(scope="module")
def font() -> Path:
    return find_font()


@pytest.fixture(scope="module")
def backgrounds(shared_data: Path) -> list[Background]:
    return load_backgrounds(shared_data)


def _rows(dataset: Path) -> list[dict[str, str]]:
    with (dataset / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("layout", "grammar_format", "lines", "error"),
    [
        ("ua_current", "ua_current", 1, None),
        ("ua_ev", "ua_ev", 1, None),
        ("ua_square", "ua_current", 2, None),
        ("ua_1995", "ua_1995", 1, None),
        ("ua_transit", "ua_transit", 1, None),
        ("ua_diplomatic", "ua_diplomatic", 1, None),
        ("ua_military", "ua_military", 1, None),
        ("ua_bogus", "", 0, ValueError),
    ],
)
def test_layouts_follow_the_grammar(
    layout: str, grammar_format: str, lines: int, error: type[Exception] | None, font: Path
) -> None:
    rng = np.random.default_rng(5)
    if error is not None:
        with pytest.raises(error, match="unknown plate layout"):
            random_plate(layout, rng)
        return
    assert GRAMMAR_FORMATS[layout] == grammar_format
    for _ in range(20):
        spec = random_plate(layout, rng)
        info = parse(spec.text)
        assert info.format == grammar_format, spec
        assert len(spec.rows) == lines
        assert normalise(spec.text) == spec.text
        if layout == "ua_1995":  # the numeric region code under the flag names the region
            assert parse(spec.numeric_region + spec.text).region == spec.region != ""
        else:
            assert info.region == spec.region
        assert info.region.startswith("UA-") == (layout in ("ua_current", "ua_ev", "ua_square"))
    drawn = render(spec, font, 0.6)
    h, w = drawn.rgba.shape[:2]
    assert drawn.rgba[..., 3].max() == 255
    assert (drawn.corners >= -0.5).all() and (drawn.corners <= (w - 0.5, h - 0.5)).all()


@pytest.mark.parametrize("font_file", FONT_CANDIDATES, ids=lambda path: path.name)
def test_each_font_gives_plate_proportions(font_file: Path) -> None:
    if not font_file.is_file():
        pytest.skip(f"{font_file} is not installed")
    spec = PlateSpec("ua_current", "AA1234BB", ("AA 1234 BB",), "UA-AA")
    drawn = render(spec, font_file, 1.0)  # 1 px per mm: 520 x 112
    rgb = drawn.rgba[..., :3].astype(int)
    ink = (rgb.max(axis=2) < 80) & (rgb.min(axis=2) < 80)  # black characters and border
    inner = ink[6:-6, 45:-6]  # inside the border, right of the band
    rows, cols = np.nonzero(inner)
    assert 70 <= rows.max() - rows.min() <= 80  # characters 77 mm tall
    assert 0.82 * 469 <= cols.max() - cols.min() <= 469  # spread over the text area


@pytest.mark.parametrize("layout", sorted(GRAMMAR_FORMATS))
def test_every_layout_lands_inside_its_image(
    layout: str, font: Path, backgrounds: list[Background]
) -> None:
    options = SynthOptions(kinds={layout: 1.0}, night_share=0.5, blur_share=0.5)
    for index in range(3):
        sample = make_sample(3, index, options, backgrounds, font)
        row, image = sample.row, sample.image
        height, width = image.shape[:2]
        corners = np.array(row["corners"].split(), dtype=float).reshape(4, 2)
        assert (corners >= 0).all() and (corners[:, 0] <= width).all()
        assert (corners[:, 1] <= height).all()
        assert (row["image_w"], row["image_h"]) == (width, height)
        assert row["bbox_x"] <= corners[:, 0].min() and row["bbox_w"] > 0
        assert row["bbox_x"] + row["bbox_w"] <= width and row["bbox_y"] + row["bbox_h"] <= height
        assert 0.7 * 80 <= row["plate_px"] <= 1.3 * 300
        assert parse(row["plate_text"]).format == GRAMMAR_FORMATS[layout]


def test_a_seed_gives_the_same_set(tmp_path: Path, font: Path, shared_data: Path) -> None:
    made = {
        name: generate(tmp_path / name, count, seed, font=font, data=shared_data)
        for name, count, seed in (("a", 5, 7), ("b", 5, 7), ("c", 3, 7), ("d", 5, 8))
    }
    assert made["a"]["images"] == 5
    a, b, c, d = (_rows(tmp_path / n) for n in "abcd")
    assert a == b and a[:3] == c and [r["plate_text"] for r in a] != [r["plate_text"] for r in d]
    for row in a:
        same = (tmp_path / "b" / row["file"]).read_bytes()
        assert (tmp_path / "a" / row["file"]).read_bytes() == same
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate(tmp_path / "a", 2, 7, font=font, data=shared_data)
    generate(tmp_path / "a", 2, 7, font=font, data=shared_data, overwrite=True)
    assert len(_rows(tmp_path / "a")) == len(list((tmp_path / "a" / "images").iterdir())) == 2


@pytest.mark.parametrize(
    ("path", "error"),
    [(None, None), (Path("/nonexistent/font.ttf"), FileNotFoundError)],
)
def test_find_font(path: Path | None, error: type[Exception] | None) -> None:
    if error is not None:
        with pytest.raises(error, match="fonts-opendin fonts-dejavu-core"):
            find_font(path)
    else:
        assert find_font(path) in FONT_CANDIDATES


@pytest.mark.parametrize(
    ("args", "exit_code", "layouts"),
    [
        (["--layout", "ua_square", "--night-share", "1"], 0, {"ua_square": 3}),
        (["--layout", "ua_nope"], 2, None),
        (["--night-share", "1.5"], 2, None),
        (["--font", "/nonexistent.ttf"], 1, None),
    ],
)
def test_cli_writes_a_set_and_prints_its_summary(
    tmp_path: Path, args: list[str], exit_code: int, layouts: dict[str, int] | None
) -> None:
    out = tmp_path / "set"
    cmd = ["bench", "synth-plates", "--out", str(out), "--count", "3", "--json", *args]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == exit_code, result.output
    if layouts is None:
        return
    summary = json.loads(result.output)
    assert summary["layouts"] == layouts and summary["lines"] == {"2": 3}
    assert summary["conditions"] == {"night": 3}
    assert len(load_samples(out)) == 3 and (out / "SOURCE.md").is_file()


@pytest.mark.slow
def test_the_reader_reads_synthetic_plates(
    tmp_path: Path, model_store: ModelStore, shared_data: Path
) -> None:
    options = SynthOptions(
        night_share=0.5,
        kinds={"ua_current": 0.45, "ua_ev": 0.1, "ua_square": 0.3, "ua_1995": 0.15},
    )
    generate(tmp_path, 40, 11, options, data=shared_data)
    rows = _rows(tmp_path)
    assert {r["condition"] for r in rows} == {"day", "night"}
    assert {r["lines"] for r in rows} == {"1", "2"}
    reader = PPOCRPlateReader.from_store(model_store)
    exact = 0
    for sample in load_samples(tmp_path):
        plates = reader.read(load_image(sample.path))
        exact += bool(plates) and plates[0].text == sample.text
    assert exact / len(rows) >= E2E_MIN_EXACT


@pytest.mark.slow
def test_synth_eval_breaks_the_figures_down(
    tmp_path: Path, model_store: ModelStore, shared_data: Path
) -> None:
    generate(tmp_path, 4, 2, SynthOptions(night_share=0.5), data=shared_data)
    with pytest.raises(ValueError, match="unknown --by column"):
        synth_eval.run(tmp_path, ("weather",), model_store.root, baseline=False)
    result = synth_eval.run(tmp_path, ("condition", "size"), model_store.root, baseline=False)
    assert result["images"] == 4 and "baseline" not in result
    for column in ("condition", "size"):
        groups = result["by"][column]
        assert sum(g["images"] for g in groups.values()) == 4
        assert all(0 <= g["reader"]["exact_rate"] <= 1 for g in groups.values())


@pytest.mark.parametrize(
    ("index", "text", "why"),
    [
        (390, "IA9086TH", "the 320 px box cuts TH off the top row; the 640 px box holds it"),
        (316, "KA8257HA", "DB boxes only the bottom row until the photo is enlarged"),
        (153, "S057703", "a finer look reading SO57703 (Polish) does not displace it"),
    ],
)
def test_finer_looks_read_two_line_plates_the_first_look_misses(
    model_store: ModelStore,
    backgrounds: list[Background],
    font: Path,
    index: int,
    text: str,
    why: str,
) -> None:
    # Plates of the 500-plate set `varta bench synth-plates --seed 1` that the reader
    # missed before places were looked at again and the zoom look was added, and one
    # that looking again had cost.
    import cv2

    sample = make_sample(1, index, SynthOptions(), backgrounds, font)
    assert sample.row["plate_text"] == text
    quality = [cv2.IMWRITE_JPEG_QUALITY, int(sample.row["jpeg_quality"])]
    ok, jpeg = cv2.imencode(".jpg", sample.image, quality)  # as the set stores it
    assert ok
    image = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), dtype=np.uint8)
    plates = PPOCRPlateReader.from_store(model_store).read(image)
    assert [p.text for p in plates] == [text], why
