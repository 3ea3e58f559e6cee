"""What a service needs of the audit log: the one method it calls (``AuditLog`` has it)."""

from __future__ import annotations

from typing import Any, Protocol


class AuditSink(Protocol):
    """Appends audit entries; ``central.audit.AuditLog`` is the implementation."""

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry."""
