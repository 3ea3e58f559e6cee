"""Central's storage: one embedded DuckDB file plus append-only thumbnail packs."""
