"""Sighting search: query model, plate index, repository and service (no Litestar here)."""

from __future__ import annotations

from central.search.query import JourneyQuery, PlateQuery, SearchQuery
from central.search.service import SearchService

__all__ = ["JourneyQuery", "PlateQuery", "SearchQuery", "SearchService"]
