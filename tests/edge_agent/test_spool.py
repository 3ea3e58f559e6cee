"""The edge spool: durable, ordered, bounded with counted eviction, crash-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge_agent.spool import Spool


def _records(n: int, size: int = 100, start: int = 0) -> list[bytes]:
    return [f"{start + i:08d}".encode() * (size // 8) for i in range(n)]


def test_append_read_ack_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    seqs = spool.append(_records(10))
    assert seqs == list(range(1, 11))
    got = spool.read(0, 4, 1 << 20)
    assert [s for s, _ in got] == [1, 2, 3, 4]
    assert got[2][1] == _records(10)[2]
    assert [s for s, _ in spool.read(4, 100, 1 << 20)] == list(range(5, 11))
    spool.ack([1, 2, 3])
    assert spool.floor == 4 and spool.stats().depth == 7
    spool.ack([7, 5])  # out of order: floor waits for 4
    assert spool.floor == 4 and spool.stats().depth == 5
    assert [s for s, _ in spool.read(0, 100, 1 << 20)] == [4, 6, 8, 9, 10]
    spool.ack([4, 6])
    assert spool.floor == 8


def test_read_respects_byte_budget(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(10, size=1000))
    assert len(spool.read(0, 100, 2500)) == 3  # stops once the budget is used up


def test_survives_reopen_and_keeps_unacked(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    spool.append(_records(100))
    spool.ack(range(1, 41))
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    got = again.read(0, 1000, 1 << 30)
    assert [s for s, _ in got] == list(range(41, 101))
    assert got[0][1] == _records(100)[40]
    assert again.append(_records(1)) == [101]  # seqs never go back
    segments = list((tmp_path / "segments").glob("*.seg"))
    assert len(segments) < 100 * 100 // 4096 + 2  # delivered segments were deleted


def test_torn_tail_is_cut_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(5))
    spool.close()
    seg = next((tmp_path / "segments").glob("*.seg"))
    with open(seg, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00partial")  # a record header cut short by a crash
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert [s for s, _ in again.read(0, 100, 1 << 20)] == [1, 2, 3, 4, 5]
    assert again.stats().corrupt == 1
    assert again.append(_records(1)) == [6]


def test_corrupt_record_stops_at_last_good_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_records(5))
    spool.close()
    seg = next((tmp_path / "segments").glob("*.seg"))
    data = bytearray(seg.read_bytes())
    data[3 * (16 + 96) + 20] ^= 0xFF  # flip a payload byte of record 4
    seg.write_bytes(bytes(data))
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert [s for s, _ in again.read(0, 100, 1 << 20)] == [1, 2, 3]
    assert again.stats().corrupt == 1


def test_full_spool_evicts_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024)
    for i in range(20):
        spool.append(_records(10, size=1000, start=i * 10))
    stats = spool.stats()
    assert stats.bytes <= 64 * 1024 + 8 * 1024 + 10 * 1016
    assert stats.evictions > 0
    left = [s for s, _ in spool.read(0, 1000, 1 << 30)]
    assert left == list(range(left[0], 201))  # the newest survive, oldest went first
    assert stats.evictions + len(left) == 200  # every record is either kept or counted
    spool.close()
    assert Spool(tmp_path, max_bytes=64 * 1024).stats().evictions == stats.evictions


def test_eviction_does_not_count_delivered_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=16 * 1024, segment_bytes=4 * 1024)
    seqs = spool.append(_records(10, size=1000))
    spool.ack(seqs)
    for _ in range(3):
        spool.append(_records(10, size=1000))
    assert spool.stats().evictions == 30 - len(spool.read(0, 1000, 1 << 30))


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge_agent.spool import Spool
    spool = Spool(Path(sys.argv[1]), max_bytes=1 << 30, fsync_interval=10.0)
    i = 0
    while True:
        seqs = spool.append([f"record-{i + k}".encode() * 20 for k in range(7)])
        i += 7
        print(seqs[-1], flush=True)
    """
)


def test_sigkill_mid_stream_loses_no_appended_record(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    confirmed = 0
    deadline = time.monotonic() + 20
    while confirmed < 20_000 and time.monotonic() < deadline:
        confirmed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    spool = Spool(tmp_path, max_bytes=1 << 30)
    got = spool.read(0, 10**7, 1 << 40)
    seqs = [s for s, _ in got]
    assert seqs[:confirmed] == list(range(1, confirmed + 1))  # all confirmed are there, in order
    assert all(p.startswith(f"record-{s - 1}".encode()) for s, p in got)
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("fsync_interval", [0.0, 0.05])
def test_fsync_settings_keep_data(tmp_path: Path, fsync_interval: float) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, fsync_interval=fsync_interval)
    spool.append(_records(3))
    spool.close()
    assert len(Spool(tmp_path, max_bytes=1 << 20).read(0, 10, 1 << 20)) == 3
