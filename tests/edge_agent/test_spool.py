"""The edge spool: durable, ordered, bounded with counted eviction, crash-safe."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge_agent.spool import Spool, SpoolWriteError
from tests.harness import wait_for
from tests.small_fs import PAGE, Filler, sectors_written, small_ext4, small_filesystem


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


def _segment_bytes_on_disk(spool_dir: Path) -> int:
    return sum(p.stat().st_size for p in (spool_dir / "segments").glob("*.seg"))


def test_full_disk_refuses_whole_appends_and_loses_nothing(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 64 * PAGE) as fs:
        filler = Filler(fs / "fill")
        filler.fill()
        filler.free(24)  # 96 KiB for the spool: a few segments, then the disk is full
        Spool(fs / "spool").close()  # state.json exists from here on
        spool = Spool(fs / "spool", max_bytes=1 << 30, segment_bytes=16 * 1024)
        kept: list[tuple[int, bytes]] = []
        refused = 0
        for batch in range(200):
            # 5 records of 3 KB: one write spans pages, so the disk fills in mid-record
            payloads = _records(5, size=3000, start=batch * 5)
            try:
                kept += zip(spool.append(payloads), payloads, strict=True)
            except SpoolWriteError as err:
                assert err.errno == errno.ENOSPC
                assert "none of them was kept" in str(err)
                refused += 1
                if refused == 5:
                    break
        assert refused == 5 and len(kept) >= 20
        assert [s for s, _ in kept] == list(range(1, len(kept) + 1))  # no gaps
        assert spool.read(0, 10_000, 1 << 30) == kept  # nothing lost or corrupted
        stats = spool.stats()
        assert stats.write_errors == 5 and stats.depth == len(kept)
        assert _segment_bytes_on_disk(fs / "spool") == stats.bytes  # cut to whole records
        state_before = (fs / "spool" / "state.json").read_text()
        filler.fill()  # the last pages too, which a refused append gave back
        spool.ack(range(1, 6))  # an ack on a full disk must not fail
        spool.flush()  # nor the flusher; it counts the failed state save
        assert spool.stats().sync_errors >= 1
        assert (fs / "spool" / "state.json").read_text() == state_before  # intact
        assert sorted(p.name for p in (fs / "spool").iterdir()) == ["segments", "state.json"]

        filler.free()  # space returns
        seqs = spool.append(_records(3, start=9000))
        assert seqs == [len(kept) + 1, len(kept) + 2, len(kept) + 3]
        spool.flush()
        assert json.loads((fs / "spool" / "state.json").read_text())["floor"] == 6
        spool.close()
        again = Spool(fs / "spool", max_bytes=1 << 30)
        got = again.read(0, 10_000, 1 << 30)
        assert got == kept[5:] + list(zip(seqs, _records(3, start=9000), strict=True))
        assert again.stats().corrupt == 0  # no torn tail was left behind
        again.close()


@pytest.mark.parametrize(("fsync_interval", "synced"), [(0.2, True), (30.0, False)])
def test_idle_spool_syncs_on_a_timer(tmp_path: Path, fsync_interval: float, synced: bool) -> None:
    with small_ext4(tmp_path / "fs", 16 << 20) as fs:
        spool = Spool(fs / "spool", max_bytes=1 << 20, fsync_interval=fsync_interval)
        spool.append(_records(3))  # then no append follows: the agent is idle
        before = sectors_written(fs)
        assert wait_for(lambda: sectors_written(fs) > before, 2.0) is synced
        spool.close()
