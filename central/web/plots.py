"""Small line plots drawn on the server as inline SVG, each with the numbers it shows.

No plotting library and no script: a :class:`Plot` holds polyline points in a fixed view
box (the template scales it), the axis labels and a per-hour summary table, which is the
plot's text alternative (screen readers and copy-paste get the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

WIDTH: Final = 720
HEIGHT: Final = 120
PAD: Final = 4


@dataclass(frozen=True)
class Line:
    """One series: its name (CSS class and legend) and its runs of points (a gap in the
    data ends a run, so no line is drawn across minutes without data)."""

    name: str
    runs: list[str]


@dataclass(frozen=True)
class Plot:
    """One plot over ``[start, end)``.

    Attributes:
        lines: The series drawn.
        y_max: The value at the top edge.
        start: UNIX time at the left edge.
        end: UNIX time at the right edge.
        width: View box width.
        height: View box height.
    """

    lines: list[Line]
    y_max: float
    start: float
    end: float
    width: int = WIDTH
    height: int = HEIGHT


@dataclass
class HourRow:
    """One hour of the summary table (means over the minutes with data)."""

    hour: float
    values: dict[str, float] = field(default_factory=dict)


def nice_max(value: float) -> float:
    """A round upper bound at or above ``value`` (1, 2, 5 x 10^n); 1 for nothing."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def plot(
    minutes: Sequence[int],
    series: Mapping[str, Sequence[float | None]],
    start: float,
    end: float,
    step: int = 60,
) -> Plot:
    """A plot of ``series`` (values per minute in ``minutes``) over ``[start, end)``.

    Args:
        minutes: UNIX time of each value's minute, ascending.
        series: Values by series name, aligned with ``minutes`` (``None``: no value).
        start: Left edge.
        end: Right edge.
        step: Seconds between consecutive points of one run.
    """
    top = max((v for vs in series.values() for v in vs if v is not None), default=0.0)
    y_max = nice_max(top)
    span = max(end - start, 1.0)

    def xy(t: int, v: float) -> str:
        x = PAD + (t - start) / span * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - v / y_max * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for name, values in series.items():
        runs: list[str] = []
        run: list[str] = []
        last: tuple[int, float] | None = None
        for t, v in zip(minutes, values, strict=True):
            if v is None or t < start or t >= end:
                continue
            if last is not None and t - last[0] > step and run:
                runs.append(_close(run, last, step, xy))
                run = []
            run.append(xy(t, v))
            last = (t, v)
        if run and last is not None:
            runs.append(_close(run, last, step, xy))
        lines.append(Line(name, runs))
    return Plot(lines, y_max, start, end)


def _close(
    run: list[str], last: tuple[int, float], step: int, xy: Callable[[int, float], str]
) -> str:
    """A run's points; a lone minute is drawn across its own width (a line needs two)."""
    if len(run) == 1:
        run = [run[0], xy(last[0] + step, last[1])]
    return " ".join(run)


def hourly(
    minutes: Sequence[int],
    means: Mapping[str, Sequence[float | None]],
    sums: Mapping[str, Sequence[float]],
) -> list[HourRow]:
    """Per-hour rows, oldest first: the mean of each of ``means`` and the total of each of
    ``sums`` over the hour's minutes (hours without data are left out)."""
    rows: dict[int, HourRow] = {}
    acc: dict[tuple[int, str], list[float]] = {}
    for i, t in enumerate(minutes):
        hour = t - t % 3600
        row = rows.setdefault(hour, HourRow(float(hour)))
        for name, values in means.items():
            v = values[i]
            if v is not None:
                acc.setdefault((hour, name), []).append(v)
        for name, totals in sums.items():
            row.values[name] = row.values.get(name, 0.0) + totals[i]
    for (hour, name), vs in acc.items():
        rows[hour].values[name] = sum(vs) / len(vs)
    return [rows[h] for h in sorted(rows)]
