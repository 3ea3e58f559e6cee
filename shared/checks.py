"""Results of ``varta edge check`` / ``varta central check`` and the table they print.

A check answers one question an engineer on site asks ("are the models there?", "does
central take my key?") with a status and, when it fails, the command or change that fixes
it. ``warn`` is worth reading but does not fail the run; any ``fail`` makes the command
exit 1, which is what the Ansible role and scripts test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class CheckResult:
    """One row of the check table.

    Attributes:
        name: What was checked, e.g. ``camera lot-1`` or ``central link``.
        status: ``ok``, ``warn`` (does not fail the run) or ``fail``.
        detail: What was found, with numbers.
        fix: What to do about a failure or warning; empty when ok.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> CheckResult:
    """A passing row."""
    return CheckResult(name, "ok", detail)


def warn(name: str, detail: str, fix: str = "") -> CheckResult:
    """A row worth reading that does not fail the run."""
    return CheckResult(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> CheckResult:
    """A failing row; ``fix`` names the command or change that repairs it."""
    return CheckResult(name, "fail", detail, fix)


def guarded(name: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run one check; an unexpected error becomes its failing row instead of a traceback.

    Each check handles the failures it knows; this is the net under them, so one broken
    check never hides the rows of the others.
    """
    try:
        return check()
    except Exception as err:  # reported as the row's failure, with its type
        return [fail(name, f"check crashed: {type(err).__name__}: {err}", "report this bug")]


def passed(results: Sequence[CheckResult]) -> bool:
    """True when no row failed (warnings pass)."""
    return all(r.status != "fail" for r in results)


def render_table(results: Sequence[CheckResult], width: int = 100) -> str:
    """A plain-text table: check, status, detail, and the fix under a failing row."""
    name_w = max([len("CHECK"), *(len(r.name) for r in results)])
    lines = [f"{'CHECK':<{name_w}}  STATUS  DETAIL"]
    for r in results:
        lines.append(f"{r.name:<{name_w}}  {r.status.upper():<6}  {_clip(r.detail, width)}")
        if r.fix:
            lines.append(f"{'':<{name_w}}  {'':<6}  fix: {r.fix}")
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    lines.append(
        f"{len(results)} checks: {len(results) - failed - warned} ok, {warned} warnings, "
        f"{failed} failed"
    )
    return "\n".join(lines)


def render_json(results: Sequence[CheckResult]) -> str:
    """The rows as one JSON object (for scripts and the Ansible role)."""
    return json.dumps(
        {"ok": passed(results), "checks": [asdict(r) for r in results]}, ensure_ascii=False
    )


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width * 3 else text[: width * 3 - 3] + "..."
