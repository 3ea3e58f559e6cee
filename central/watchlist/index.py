"""Lookup structures behind the matcher, built once per list version and then read-only.

* ``canonical(plate)`` maps each OCR confusion class to one character (0/O/D/Q -> 0,
  1/I -> 1, 8/B -> 8, 5/S -> 5, 2/Z -> 2, 6/G -> 6), so a plate and all its confusable
  reads share one key: one dict lookup finds exact and OCR-equivalent entries.
* ``DeletionIndex`` holds, SymSpell style, every canonical plate with one character
  deleted, packed into a ``uint64`` (the ASCII bytes, big-endian; at most 8 bytes) in a
  sorted array searched by bisection: a read that lacks one character is looked up as it
  is. A read with one extra character is handled by deleting each of its characters and looking the
  results up in the canonical dict, so no insertion index is needed.
* ``PatternIndex`` holds the few wildcard patterns, bucketed by one literal bigram each
  (the rarest among the patterns), so a read only tries the patterns sharing a bigram.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shared.plates import CONFUSION_CLASSES

_CANON: Final = bytes.maketrans(
    "".join(cls[1:] for cls in CONFUSION_CLASSES).encode(),
    "".join(cls[0] * (len(cls) - 1) for cls in CONFUSION_CLASSES).encode(),
)
PACK_WIDTH: Final = 8  # characters that fit one uint64 key
MIN_EDIT_LENGTH: Final = 5  # listed plates shorter than this never match with an edit


def canonical(text: str) -> bytes:
    """Collapse each OCR confusion class to one character (``AT1234BO`` -> ``b"AT123480"``).

    Keys are ASCII bytes (fast to slice, hash and pack); other characters become ``?``.
    """
    return text.encode("ascii", "replace").translate(_CANON)


def canonical_array(plates: pa.Array) -> pa.Array:
    """``canonical`` over an Arrow string array, vectorised."""
    for cls in CONFUSION_CLASSES:
        for ch in cls[1:]:
            plates = pc.replace_substring(plates, ch, cls[0])
    return plates


def pack(key: bytes) -> int:
    """A canonical key of at most 8 characters as one integer, or -1 when longer."""
    return int.from_bytes(key, "big") if len(key) <= PACK_WIDTH else -1


class DeletionIndex:
    """Canonical plates with one character deleted -> rows, in sorted numpy arrays.

    Build with ``DeletionIndex.from_arrow``; an empty index is ``DeletionIndex()``.
    """

    def __init__(self) -> None:
        # Python arrays, not numpy: bisect on them beats a numpy call for a few queries.
        self.keys = array("Q")  # sorted distinct packed keys
        self.starts = array("i", [0])  # rows of keys[i] are rows[starts[i]:starts[i + 1]]
        self.rows = array("i")
        self.overflow: dict[bytes, list[int]] = {}

    @classmethod
    def from_arrow(cls, keys: pa.Array, rows: npt.NDArray[np.int32]) -> DeletionIndex:
        """Index canonical ASCII plates ``keys`` of the given row numbers."""
        self = cls()
        width = PACK_WIDTH + 1
        lengths = pc.binary_length(keys).to_numpy(zero_copy_only=False).astype(np.int64)
        short = (lengths <= width) & pc.string_is_ascii(keys).to_numpy(zero_copy_only=False)
        for at in np.flatnonzero(~short).tolist():  # rare: plates longer than 9
            key, row = canonical(keys[at].as_py()), int(rows[at])
            for pos in range(len(key)):
                self.overflow.setdefault(key[:pos] + key[pos + 1 :], []).append(row)
        padded = pc.utf8_rpad(keys.filter(pa.array(short)), width=width, padding="\0")
        offsets = np.frombuffer(padded.buffers()[1], np.int32)[padded.offset :]
        data = np.frombuffer(padded.buffers()[2], np.uint8)
        matrix = data[offsets[0] : offsets[0] + width * len(padded)].reshape(-1, width)
        lengths, row_ids = lengths[short], rows[short]
        parts_k: list[npt.NDArray[np.uint64]] = []
        parts_r: list[npt.NDArray[np.int32]] = []
        for pos in range(width):
            sel = lengths > pos
            deleted = np.ascontiguousarray(np.delete(matrix[sel], pos, axis=1))
            packed = deleted.view(">u8").ravel().astype(np.uint64)
            # Left-aligned with zero padding: shift the padding out to get the packed value.
            packed >>= ((PACK_WIDTH - (lengths[sel] - 1)) * 8).astype(np.uint64)
            parts_k.append(packed)
            parts_r.append(row_ids[sel])
        all_keys = np.concatenate(parts_k)
        order = np.argsort(all_keys, kind="stable")
        all_keys = all_keys[order]
        first = np.flatnonzero(np.r_[True, all_keys[1:] != all_keys[:-1]]) if len(order) else order
        self.keys = array("Q", all_keys[first].tobytes())
        self.starts = array("i", np.append(first, len(all_keys)).astype(np.int32).tobytes())
        self.rows = array("i", np.concatenate(parts_r)[order].astype(np.int32).tobytes())
        return self

    @property
    def nbytes(self) -> int:
        """Memory held by the key and row arrays."""
        return sum(a.itemsize * len(a) for a in (self.keys, self.starts, self.rows))

    def lookup(self, texts: Sequence[bytes]) -> list[list[int]]:
        """Rows whose canonical plate with one character deleted equals each key."""
        found: list[list[int]] = []
        keys, size = self.keys, len(self.keys)
        for text in texts:
            rows: list[int] = []
            if len(text) > PACK_WIDTH:
                rows.extend(self.overflow.get(text, ()))
            else:
                key = int.from_bytes(text, "big")
                at = bisect_left(keys, key)
                if at < size and keys[at] == key:
                    rows = self.rows[self.starts[at] : self.starts[at + 1]].tolist()
            found.append(rows)
        return found


class KeyFilter:
    """A bitmap over hashed keys that fits in CPU cache: a cheap "surely absent" test.

    Looking a random key up in a dict of a million keys costs a few cache misses; most
    lookups of a read's deletions miss, so this filter (16 bits per key, ~6% false
    positives) answers them first.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        bits = max(1 << 16, 1 << (len(keys) * 16 - 1).bit_length())
        self.mask = bits - 1
        where = np.fromiter((hash(k) & self.mask for k in keys), np.int64, count=len(keys))
        table = np.zeros(bits >> 3, np.uint8)
        np.bitwise_or.at(table, where >> 3, (1 << (where & 7)).astype(np.uint8))
        self.table = table.tobytes()

    def __contains__(self, key: bytes) -> bool:
        spot = hash(key) & self.mask
        return bool(self.table[spot >> 3] >> (spot & 7) & 1)


class Pattern(NamedTuple):
    """A wildcard pattern of one row, compiled for canonical and folded text.

    ``vtype`` and ``colour`` are set for attribute entries ('' = any).
    """

    row: int
    text: str
    canon: re.Pattern[bytes]
    folded: re.Pattern[str]
    vtype: str = ""
    colour: str = ""


def compile_pattern(row: int, pattern: str, vtype: str = "", colour: str = "") -> Pattern:
    """Compile ``?`` (one character) and ``*`` (any run) into anchored regexes."""

    def to_regex(text: str) -> str:
        """Regex source for a wildcard pattern."""
        return "".join("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in text)

    canon = re.compile(to_regex(canonical(pattern).decode("ascii")).encode("ascii"))
    return Pattern(row, pattern, canon, re.compile(to_regex(pattern)), vtype, colour)


def _grams(pattern: str) -> set[bytes]:
    """Literal trigrams of a canonical pattern, or its bigrams when it has no trigram."""
    runs = re.split(rb"[?*]+", canonical(pattern))
    for size in (3, 2):
        grams = {run[i : i + size] for run in runs for i in range(len(run) - size + 1)}
        if grams:
            return grams
    return set()


class PatternIndex:
    """Wildcard patterns bucketed by their rarest literal trigram (else bigram)."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        items = list(patterns)
        grams = [_grams(p.text) for p in items]
        freq = Counter(g for gs in grams for g in gs)
        self.buckets: dict[bytes, list[Pattern]] = {}
        self.always: list[Pattern] = []
        for item, gs in zip(items, grams, strict=True):
            if gs:
                self.buckets.setdefault(min(gs, key=lambda g: (freq[g], g)), []).append(item)
            else:
                self.always.append(item)
        self.sizes = sorted({len(g) for g in self.buckets})
        self.size = len(items)

    def candidates(self, canon: bytes) -> list[Pattern]:
        """Patterns that may match a canonical read (to be confirmed by regex)."""
        out = list(self.always)
        buckets = self.buckets
        for size in self.sizes:
            for gram in {canon[i : i + size] for i in range(len(canon) - size + 1)}:
                found = buckets.get(gram)
                if found:
                    out.extend(found)
        return out


class StringColumn:
    """Random access to one Arrow string column without making Python objects up front."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        array = column.combine_chunks()
        _validity, offsets, data = array.buffers()
        view = memoryview(offsets)
        wide = pa.types.is_large_string(array.type)
        self._offsets = (view.cast("q") if wide else view.cast("i"))[array.offset :]
        self._data = memoryview(data) if data is not None else memoryview(b"")
        self.nbytes = int(array.nbytes)

    def get(self, row: int) -> str:
        """The string at ``row`` (NULL reads as '')."""
        return str(self._data[self._offsets[row] : self._offsets[row + 1]], "utf-8")


def compact_array(code: str, values: npt.NDArray[Any]) -> array[Any]:
    """A compact Python array (fast scalar reads) from a numpy array."""
    out = array(code)
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out
