"""Plate understanding shared by edge and central: script folding (more to come here).

Registries write Ukrainian plates in Cyrillic; OCR reads Latin. Both sides fold to one
script, the Latin look-alikes, before any comparison.
"""

from __future__ import annotations

from typing import Final

# The 12 Cyrillic letters used on Ukrainian plates and their Latin look-alikes.
CYRILLIC_TO_LATIN: Final = str.maketrans(
    {
        "А": "A", "В": "B", "Е": "E", "І": "I", "К": "K", "М": "M",
        "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X",
        "Ї": "I", "Є": "E",
    }
)
_SEPARATORS: Final = str.maketrans("", "", " -.·_\t\n")


def fold(text: str) -> str:
    """Fold a plate to comparable form: upper case, Latin look-alikes, no separators.

    >>> fold("аа 7681-те")
    'AA7681TE'
    """
    return text.upper().translate(CYRILLIC_TO_LATIN).translate(_SEPARATORS)
