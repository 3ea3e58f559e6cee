"""Build the clockshift shim (``clockshift.c``) and step a process's wall clock with it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("clockshift.c")


def unavailable() -> str:
    """Why the shim cannot be built here, or ``""``."""
    if shutil.which("gcc") is None:
        return "needs gcc and libc6-dev (./run setup installs them) to build the clock shim"
    return ""


def build(out_dir: Path) -> Path:
    """Compile the shim into ``out_dir``; return the ``.so`` path.

    Raises:
        RuntimeError: gcc failed (the message holds its output).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "clockshift.so"
    argv = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(lib), str(SOURCE), "-ldl"]
    done = subprocess.run(
        [*argv, "-lpthread"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gcc could not build {SOURCE.name}: {done.stderr.strip()}")
    return lib


class ClockShift:
    """The offset file one shimmed process reads: :meth:`set` steps its wall clock."""

    def __init__(self, lib: Path, offset_file: Path) -> None:
        self.lib = lib
        self.offset_file = offset_file
        self.set(0.0)

    def env(self) -> dict[str, str]:
        """Environment that loads the shim into a process started with it."""
        return {"LD_PRELOAD": str(self.lib), "VARTA_CLOCKSHIFT_FILE": str(self.offset_file)}

    def set(self, seconds: float) -> None:
        """Make the process's wall clock ``seconds`` off real time (within 20 ms)."""
        tmp = self.offset_file.with_name(self.offset_file.name + ".tmp")
        tmp.write_text(f"{seconds:.3f}\n")
        tmp.replace(self.offset_file)
