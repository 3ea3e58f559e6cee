"""CURVE key files: private from the first byte, never overwritten by accident, never torn."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared import keys
from shared.errors import ConfigError
from tests.small_fs import PAGE, Filler, small_filesystem


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_pair_loads_and_secret_is_private_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0):  # a permissive umask must not widen the secret file
        public, secret = keys.generate(tmp_path, "box-1")
    assert (mode(secret), mode(public)) == (0o600, 0o644)
    pair = keys.load_pair(secret)
    assert keys.load_public(public) == pair.public
    assert len(pair.public) == len(pair.secret) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box-1.key", "box-1.key_secret"]


def test_existing_key_is_kept_unless_overwrite(tmp_path: Path) -> None:
    public, secret = keys.generate(tmp_path, "box-1")
    before = (public.read_bytes(), secret.read_bytes())
    with pytest.raises(keys.KeyExists, match=r"box-1\.key.*--force"):
        keys.generate(tmp_path, "box-1")
    assert (public.read_bytes(), secret.read_bytes()) == before
    secret.unlink()  # half a pair is protected too
    with pytest.raises(keys.KeyExists, match=r"box-1\.key exists"):
        keys.generate(tmp_path, "box-1")
    assert not secret.exists()
    keys.generate(tmp_path, "box-1", overwrite=True)
    assert public.read_bytes() != before[0] and mode(secret) == 0o600
    assert keys.load_pair(secret).public == keys.load_public(public)


@pytest.mark.parametrize(
    ("name", "error"),
    [("central", None), ("edge-12.cam", None), ("", ConfigError), ("../up", ConfigError),
     ("a/b", ConfigError), ("..", ConfigError)],
)  # fmt: skip
def test_key_name_is_a_plain_file_name(tmp_path: Path, name: str, error: type | None) -> None:
    if error is None:
        assert keys.generate(tmp_path / "k", name)[1].name == f"{name}.key_secret"
    else:
        with pytest.raises(error, match="plain file name"):
            keys.generate(tmp_path / "k", name)
    assert not (tmp_path / "up.key").exists()


def test_full_disk_leaves_no_key_behind_and_works_once_space_returns(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 16 * PAGE) as fs:
        filler = Filler(fs / "fill")
        assert filler.fill() > 0
        filler.free(1)  # room for one key file, not for two
        out = fs / "keys"
        out.mkdir()
        with umask(0), pytest.raises(OSError, match="No space left"):
            keys.generate(out, "box-1")
        assert list(out.iterdir()) == []  # no torn, half or world-readable file
        filler.free()
        public, secret = keys.generate(out, "box-1")
        assert mode(secret) == 0o600
        assert keys.load_pair(secret).public == keys.load_public(public)
