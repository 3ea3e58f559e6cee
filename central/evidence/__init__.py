"""Evidence packages: an alert or a journey exported as a checkable ZIP (no Litestar here)."""

from __future__ import annotations

from central.evidence.package import Verdict, build_package, verify_package
from central.evidence.service import EvidenceService, Package

__all__ = ["EvidenceService", "Package", "Verdict", "build_package", "verify_package"]
