"""`varta bench console` at a small scale: a real central serve over a generated store, a real
edge agent, headless Chromium. Asserts the result's keys and that the numbers are sane
(counts and orderings); never how fast anything was."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.console import PAGES
from varta.cli import app


@pytest.mark.slow
def test_console_bench_reports_every_page_and_the_browser_delay() -> None:
    args = ["bench", "console", "--json", "--sightings", "20000", "--entries", "5000",
            "--requests", "4", "--alerts", "3"]  # fmt: skip
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    result = json.loads(run.output.strip().splitlines()[-1])
    assert result["sightings"] == 20_000 and result["wanted_entries"] == 5000
    assert result["requests_per_page"] == 4
    for page in PAGES:
        median, p95 = result[f"{page.name}_median_ms"], result[f"{page.name}_p95_ms"]
        assert 0 < median <= p95, page.name
    assert result["health_bytes"] > result["health_agents_bytes"] > 0  # plots came with it
    assert result["alerts"] == 3
    assert 0 < result["alert_to_browser_median_ms"] <= result["alert_to_browser_p95_ms"]
    assert result["alert_to_browser_p95_ms"] <= result["alert_to_browser_max_ms"]


def test_too_few_entries_are_refused_with_the_reason() -> None:
    run = CliRunner().invoke(app, ["bench", "console", "--entries", "10"])
    assert run.exit_code != 0 and "5000" in run.output
