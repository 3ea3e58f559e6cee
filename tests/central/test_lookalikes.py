"""One table of OCR look-alikes serves the plate grammar, the watchlist matcher and search."""

from __future__ import annotations

import itertools

import duckdb

from central.search.index import key_rows_sql
from central.watchlist.index import canonical
from shared.plates import CONFUSION_CLASSES, CONFUSIONS, DIGITS, LATIN

ALPHABET = LATIN + DIGITS

# One row per text, shaped like ``sightings`` as far as the index SQL reads it.
_SOURCE = """(
    SELECT unnest(?::VARCHAR[]) AS plate, NULL::VARCHAR AS plate_raw,
           NULL::STRUCT(text VARCHAR)[] AS plate_candidates, NULL::TIMESTAMP AS captured_at,
           NULL::VARCHAR AS event_id, NULL::VARCHAR AS camera_id, NULL::VARCHAR AS agent_id,
           NULL::VARCHAR AS vehicle_type, NULL::VARCHAR AS colour
)"""


def search_keys(texts: list[str]) -> dict[str, str]:
    """The key search's plate index stores for each text, computed by DuckDB itself."""
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT text, k FROM ({key_rows_sql(_SOURCE, 'true')}) WHERE NOT rev", [texts]
        ).fetchall()
    return dict(rows)


def test_grammar_matcher_and_search_agree_on_every_pair() -> None:
    stored = search_keys(list(ALPHABET))
    for a, b in itertools.product(ALPHABET, repeat=2):
        alike = a == b or b in CONFUSIONS.get(a, "")
        assert (canonical(a) == canonical(b)) is alike, (a, b)
        assert (stored[a] == stored[b]) is alike, (a, b)
        assert stored[a] == canonical(a).decode(), a


def test_table_is_symmetric_and_leaves_t_and_7_apart() -> None:
    for char, alikes in CONFUSIONS.items():
        assert all(char in CONFUSIONS[other] for other in alikes), char
    assert sorted("".join(CONFUSION_CLASSES)) == sorted(CONFUSIONS)
    assert "T" not in CONFUSIONS and "7" not in CONFUSIONS
    assert canonical("AT1234BO") != canonical("A71234B0")
    assert canonical("AT1234BO") == canonical("AT1234B0")
