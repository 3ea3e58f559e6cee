"""The console's new-alert sound, made here rather than downloaded.

Two short rising tones (880 Hz then 1320 Hz, 16-bit mono PCM at 22,050 Hz) with a smooth
attack and decay, about 0.4 s long. The committed ``static/cue.wav`` is exactly what
:func:`cue_wav` returns (a test pins it): regenerate it with ``python -m central.web.cue``.
"""

from __future__ import annotations

import io
import math
import struct
import sys
import wave
from pathlib import Path
from typing import Final

RATE: Final = 22_050
TONES: Final = ((880.0, 0.16), (1320.0, 0.22))  # (frequency Hz, seconds)
GAP_S: Final = 0.03
VOLUME: Final = 0.45
CUE_FILE: Final = Path(__file__).parent / "static" / "cue.wav"


def _tone(freq: float, seconds: float) -> list[int]:
    n = int(RATE * seconds)
    attack = int(RATE * 0.01)
    samples = []
    for i in range(n):
        envelope = min(1.0, i / attack) * math.exp(-4.0 * i / n)
        value = VOLUME * envelope * math.sin(2 * math.pi * freq * i / RATE)
        samples.append(round(value * 32767))
    return samples


def cue_wav() -> bytes:
    """The WAV file's bytes (deterministic)."""
    samples: list[int] = []
    for freq, seconds in TONES:
        samples += _tone(freq, seconds)
        samples += [0] * int(RATE * GAP_S)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buf.getvalue()


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    CUE_FILE.write_bytes(cue_wav())
    sys.stdout.write(f"wrote {CUE_FILE}\n")
