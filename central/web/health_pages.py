"""The health page: agents and cameras with their state now (refreshed by htmx polling)
and each camera's fps and sightings per minute over the last hours (inline SVG plots, each
with a per-hour table as its text alternative).

Who sees it: engineers (they keep the edge running), supervisors and administrators.
Operators watch the board; a camera going offline reaches them through the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from central.camera_health import History
from central.web.access import HEALTH_VIEW, allowed
from central.web.pages import Console, render
from central.web.plots import HourRow, Plot, hourly, plot

REFRESH_S: Final = 5


@dataclass(frozen=True)
class CameraPlots:
    """One camera's plots and their text alternative.

    Attributes:
        agent_id: The agent.
        camera_id: The camera.
        fps: Mean fps in and out per minute.
        sightings: Sightings per minute.
        hours: Per-hour means of fps and totals of sightings (the plots as a table).
    """

    agent_id: str
    camera_id: str
    fps: Plot
    sightings: Plot
    hours: list[HourRow]


def camera_plots(history: History) -> list[CameraPlots]:
    """The plots of every camera in ``history``."""
    out = []
    for s in history.cameras:
        counts = [float(n) for n in s.sightings]
        fps = {"fps_in": s.fps_in, "fps_out": s.fps_out}
        out.append(
            CameraPlots(
                s.agent_id,
                s.camera_id,
                plot(s.minutes, fps, history.start, history.end),
                plot(s.minutes, {"sightings": counts}, history.start, history.end),
                hourly(s.minutes, fps, {"sightings": counts}),
            )
        )
    return out


class HealthPageController(Controller):
    """``/console/health`` and its live part."""

    path = "/console/health"
    include_in_schema = False

    @get("/", guards=[allowed(HEALTH_VIEW)], sync_to_thread=True)
    def health(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        agent: FromQuery[str] = "",
    ) -> Template:
        """Agents and cameras now, then the plots of the cameras of ``agent`` (the first
        agent when none is chosen)."""
        agents = console.health.agents()
        known = [a["agent_id"] for a in agents]
        chosen = agent if agent in known else (known[0] if known else "")
        history = console.health.history(chosen) if chosen else None
        return render(
            console,
            request,
            "health.html",
            "health",
            agents=agents,
            chosen=chosen,
            cameras=camera_plots(history) if history is not None else [],
            hours=console.health.hours,
            refresh_s=REFRESH_S,
        )

    @get("/agents", guards=[allowed(HEALTH_VIEW)], sync_to_thread=True)
    def agents(
        self, request: Request[Any, Any, Any], console: NamedDependency[Console]
    ) -> Template:
        """The agents and cameras table alone (what the page polls)."""
        return render(
            console,
            request,
            "_health_agents.html",
            "health",
            agents=console.health.agents(),
            refresh_s=REFRESH_S,
        )
