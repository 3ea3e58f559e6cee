"""Plate voting: one plate text from several reads of the same vehicle.

Reads of the most common length (by total confidence) vote per position, each character
weighted by its OCR confidence times the read's; reads of other lengths are aligned to
that result by edit distance and vote at half weight where they line up. This beats
keeping the single most confident read: one confident misread (``O`` for ``0``, ``8`` for
``B``) is outvoted by several reads that agree. Pure Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from shared import plates
from shared.wire import Plate, PlateCandidate

_OTHER_LENGTH_WEIGHT = 0.5  # a read of another length counts half, after alignment
_PARTIAL_AGREEMENT_WEIGHT = 0.5


def char_weights(read: Plate) -> list[float]:
    """Weight of each character of ``read.text``: its OCR confidence times the read's.

    ``char_confidences`` follow the raw OCR text (separators included); they are used
    where the raw letters line up with the text, else the read's confidence stands in.
    """
    raw, confs = read.raw, list(read.char_confidences)
    if len(confs) != len(raw):
        raw = raw.replace(" ", "")
    pairs = (
        [(plates.fold(ch), p) for ch, p in zip(raw, confs, strict=True)]
        if len(confs) == len(raw)
        else []
    )
    pairs = [(ch, p) for ch, p in pairs if ch.isalnum()]
    if len(pairs) != len(read.text):
        return [read.confidence] * len(read.text)
    return [
        read.confidence * (p if ch == want else p * 0.5)
        for (ch, p), want in zip(pairs, read.text, strict=True)
    ]


def align(a: str, b: str) -> list[tuple[int, int]]:
    """Levenshtein alignment: ``(i, j)`` pairs where ``a[i]`` matches or replaces ``b[j]``."""
    n, m = len(a), len(b)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, cost)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if d[i][j] == d[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _tally(reads: Sequence[Plate], length: int) -> list[dict[str, float]]:
    table: list[dict[str, float]] = [defaultdict(float) for _ in range(length)]
    for read in reads:
        if len(read.text) == length:
            for pos, (ch, w) in enumerate(zip(read.text, char_weights(read), strict=True)):
                table[pos][ch] += w
    consensus = "".join(max(col, key=lambda k: col[k]) for col in table)
    for read in reads:
        if len(read.text) != length:
            weights = char_weights(read)
            for i, j in align(read.text, consensus):
                table[j][read.text[i]] += _OTHER_LENGTH_WEIGHT * weights[i]
    return table


def vote_plate(reads: Sequence[Plate], top_n: int = 5) -> Plate | None:
    """The plate voted from several reads of one vehicle.

    The length with the most total confidence wins; each position takes the character
    with the most per-character-confidence weight. Confidence is the geometric mean of
    the positions' vote shares times the combined (noisy-OR) confidence of the reads
    that agree with the result, so agreeing reads raise it and dissent lowers it.
    """
    reads = [r for r in reads if r.text]
    if not reads:
        return None
    by_length: dict[int, float] = defaultdict(float)
    for read in reads:
        by_length[len(read.text)] += read.confidence
    length = max(by_length, key=lambda n: (by_length[n], n))
    table = _tally(reads, length)
    text = "".join(max(col, key=lambda k: col[k]) for col in table)
    shares = [col[ch] / max(sum(col.values()), 1e-9) for col, ch in zip(table, text, strict=True)]
    miss = 1.0
    for read in reads:
        if read.text == text:
            miss *= 1.0 - read.confidence
        elif len(read.text) == length:
            agree = sum(a == b for a, b in zip(read.text, text, strict=True)) / length
            miss *= 1.0 - read.confidence * agree * _PARTIAL_AGREEMENT_WEIGHT
    confidence = math.exp(sum(math.log(max(s, 1e-9)) for s in shares) / length) * (1.0 - miss)
    best = max(reads, key=lambda r: (r.text == text, r.confidence))
    info = plates.parse(text)
    return Plate(
        text=text,
        raw=best.raw,
        confidence=round(min(confidence, 1.0), 4),
        candidates=_candidates(reads, table, text, confidence, top_n),
        char_confidences=[round(s, 4) for s in shares][:32],
        format=info.format,
        region=info.region,
        box=best.box,
    )


def _candidates(
    reads: Sequence[Plate],
    table: Sequence[Mapping[str, float]],
    text: str,
    confidence: float,
    top_n: int,
) -> list[PlateCandidate]:
    """The voted text first, then read alternatives and per-position runner-ups."""
    scores: dict[str, float] = defaultdict(float)
    for read in reads:
        for cand in read.candidates or [PlateCandidate(read.text, read.confidence)]:
            scores[cand.text] += cand.confidence / len(reads)
    for pos, col in enumerate(table):
        ranked = sorted(col.items(), key=lambda kv: -kv[1])
        if len(ranked) > 1 and ranked[0][1] > 0:
            alt = text[:pos] + ranked[1][0] + text[pos + 1 :]
            scores[alt] = max(scores[alt], confidence * ranked[1][1] / ranked[0][1])
    scores.pop(text, None)
    others = sorted(scores.items(), key=lambda kv: -kv[1])[: top_n - 1]
    return [
        PlateCandidate(t, round(min(c, 1.0), 4))
        for t, c in [(text, confidence), *others]
        if len(t) <= 32
    ]
