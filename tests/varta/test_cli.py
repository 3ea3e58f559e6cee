"""The ``varta`` command line: light to import, keys generation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared import keys
from shared.paths import REPO_ROOT
from varta.cli import app

HEAVY = ("openvino", "cv2", "duckdb", "litestar", "uvicorn", "pyarrow", "numpy")


@pytest.mark.parametrize("group", ["edge", "central", "national", "models", "keys", "bench"])
def test_help_imports_nothing_heavy(group: str) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from varta.cli import app\n"
        f"r = CliRunner().invoke(app, [{group!r}, '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_keys_gen_writes_a_usable_pair_and_allow_lists_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "keys",
            "gen",
            "box-3",
            "--out",
            str(tmp_path / "k"),
            "--allow",
            str(tmp_path / "allowed"),
        ],
    )
    assert result.exit_code == 0, result.output
    pair = keys.load_pair(tmp_path / "k" / "box-3.key_secret")
    assert len(pair.public) == 40 and len(pair.secret) == 40  # z85 of 32 bytes
    assert (tmp_path / "k" / "box-3.key_secret").stat().st_mode & 0o077 == 0
    assert keys.load_allow_list(tmp_path / "allowed") == {pair.public: "box-3"}


def test_keys_gen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    args = ["keys", "gen", "box-3", "--out", str(tmp_path / "k"), "--allow", str(tmp_path / "a")]
    assert CliRunner().invoke(app, args).exit_code == 0
    secret = tmp_path / "k" / "box-3.key_secret"
    first = keys.load_pair(secret)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert "box-3.key exists; pass --force to replace it" in again.output
    assert keys.load_pair(secret) == first
    (tmp_path / "k" / "box-3.key").unlink()
    secret.unlink()  # the key files are gone but the allow-list still names box-3
    assert "a/box-3.key exists" in CliRunner().invoke(app, args).output
    assert not secret.exists()
    forced = CliRunner().invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    new = keys.load_pair(secret)
    assert new != first and secret.stat().st_mode & 0o777 == 0o600
    assert keys.load_allow_list(tmp_path / "a") == {new.public: "box-3"}
