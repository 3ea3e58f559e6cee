"""Line charts as PNG, drawn with Pillow (the benchmarks' only plotting dependency).

A figure is a column of panels; each panel has a title, a y unit and named series of
``(x, y)`` points sharing one x axis (minutes). Small on purpose: enough to see a slope or
a saw-tooth at a glance, nothing a reader of the JSON would miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, PANEL_HEIGHT = 960, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 190, 28, 36
COLOURS = (
    *("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"),
    *("#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79"),
)

Point = tuple[float, float]


@dataclass
class Panel:
    """One chart: title, y-axis unit and its series by name."""

    title: str
    unit: str
    series: dict[str, list[Point]] = field(default_factory=dict)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _label(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _draw_panel(draw: ImageDraw.ImageDraw, top: int, panel: Panel, x_max: float) -> None:
    font = ImageFont.load_default()
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    y0, y1 = top + MARGIN_TOP, top + PANEL_HEIGHT - MARGIN_BOTTOM
    values = [y for pts in panel.series.values() for _, y in pts]
    low = min([0.0, *values])
    high = max(values, default=1.0) * 1.05 or 1.0
    draw.text((left, top + 6), f"{panel.title} ({panel.unit})", fill="black", font=font)
    draw.rectangle((left, y0, right, y1), outline="#888888")

    def sx(x: float) -> float:
        return left + (right - left) * (x / x_max if x_max > 0 else 0.0)

    def sy(y: float) -> float:
        return y1 - (y1 - y0) * ((y - low) / (high - low) if high > low else 0.0)

    for tick in _ticks(low, high):
        y = sy(tick)
        draw.line((left - 4, y, left, y), fill="#888888")
        draw.line((left, y, right, y), fill="#eeeeee")
        draw.text((6, y - 6), _label(tick), fill="black", font=font)
    for tick in _ticks(0.0, x_max):
        x = sx(tick)
        draw.line((x, y1, x, y1 + 4), fill="#888888")
        draw.text((x - 10, y1 + 8), f"{tick:.1f}", fill="black", font=font)
    draw.text((right - 40, y1 + 20), "minutes", fill="black", font=font)
    for i, (name, pts) in enumerate(panel.series.items()):
        colour = COLOURS[i % len(COLOURS)]
        if len(pts) > 1:
            draw.line([(sx(x), sy(y)) for x, y in pts], fill=colour, width=2)
        elif pts:
            x, y = pts[0]
            draw.ellipse((sx(x) - 2, sy(y) - 2, sx(x) + 2, sy(y) + 2), fill=colour)
        ly = y0 + 4 + 14 * i
        draw.line((right + 10, ly + 6, right + 30, ly + 6), fill=colour, width=3)
        draw.text((right + 36, ly), name, fill="black", font=font)


def line_charts(path: Path, panels: Sequence[Panel]) -> None:
    """Write the panels, one above the other, as a PNG at ``path``."""
    x_max = max((x for p in panels for pts in p.series.values() for x, _ in pts), default=1.0)
    image = Image.new("RGB", (WIDTH, PANEL_HEIGHT * max(len(panels), 1)), "white")
    draw = ImageDraw.Draw(image)
    for i, panel in enumerate(panels):
        _draw_panel(draw, i * PANEL_HEIGHT, panel, x_max)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
