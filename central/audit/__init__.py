"""Tamper-evident audit log: who searched, viewed, exported, confirmed or changed what.

Use one ``AuditLog`` per process (``Central.audit``)::

    audit.record(principal.user, "search", target="plate:AT1234", reason="case 12/345",
                 details={"from": t0, "to": t1, "results": 17})

Names load on first use, so ``varta central --help`` (which imports ``central.audit.cli``)
does not import DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central.audit.log import GENESIS, AuditEntry, AuditLog, AuditVerification

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "AuditVerification"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from central.audit import log

        return getattr(log, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
