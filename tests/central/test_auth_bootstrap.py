"""First start, safety rails and the offline CLI: bootstrap secrets, throttling, last admin."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from typer.testing import CliRunner

from central.accounts import AccountPolicy, Role
from central.accounts.bootstrap import bootstrap, build_accounts
from central.accounts.login import LoginBusy, LoginThrottled, Passwords, ThrottlePolicy
from central.accounts.secrets import new_secret
from central.audit import AuditLog
from central.config import AuthConfig
from central.store.db import Database
from shared.errors import ConfigError, InvalidRequest, Unauthorized
from tests.central.auth_helpers import PASSWORD, Rig, make_rig
from varta.cli import app as varta


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "varta.duckdb")
    yield database
    database.close()


def _token_file(tmp_path: Path, secret: str) -> Path:
    path = tmp_path / "bootstrap.token"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def test_first_admin_from_a_named_environment_variable(db: Database) -> None:
    cfg = AuthConfig(bootstrap_password_env="VARTA_ADMIN_PW")
    accounts = build_accounts(cfg, db, AuditLog(db), {"VARTA_ADMIN_PW": PASSWORD})
    assert accounts.login("admin", PASSWORD).role == "admin"
    again = build_accounts(cfg, db, AuditLog(db), {})  # users exist: the variable may go
    assert [u.username for u in again.list_users()] == ["admin"]


def test_missing_password_variable_on_first_start_is_a_config_error(db: Database) -> None:
    cfg = AuthConfig(bootstrap_password_env="VARTA_ADMIN_PW")
    with pytest.raises(ConfigError, match="VARTA_ADMIN_PW is not set"):
        build_accounts(cfg, db, AuditLog(db), {})


def test_bootstrap_token_is_idempotent_and_replaced_when_the_file_changes(
    db: Database, tmp_path: Path
) -> None:
    first, second = new_secret("api"), new_secret("api")
    cfg = AuthConfig(bootstrap_token_file=_token_file(tmp_path, first))
    accounts = build_accounts(cfg, db, AuditLog(db), {})
    accounts = build_accounts(cfg, db, AuditLog(db), {})
    assert accounts.authenticate(first).role is Role.ADMIN
    assert len(accounts.list_tokens("admin")) == 1
    _token_file(tmp_path, second)
    accounts = build_accounts(cfg, db, AuditLog(db), {})
    assert accounts.authenticate(second).user == "admin"
    with pytest.raises(Unauthorized, match="token revoked"):
        accounts.authenticate(first)
    assert AuditLog(db).verify().ok


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not-a-token", "expected .* to hold a token starting 'vt_'"),
        ("vt_short", "at least 32 characters"),
    ],
)
def test_malformed_token_file_is_a_config_error(
    db: Database, tmp_path: Path, content: str, error: str
) -> None:
    cfg = AuthConfig(bootstrap_token_file=_token_file(tmp_path, content))
    with pytest.raises(ConfigError, match=error):
        build_accounts(cfg, db, AuditLog(db), {})


def test_revoked_bootstrap_token_is_not_brought_back(db: Database, tmp_path: Path) -> None:
    secret = new_secret("api")
    cfg = AuthConfig(bootstrap_token_file=_token_file(tmp_path, secret))
    accounts = build_accounts(cfg, db, AuditLog(db), {})
    accounts.revoke_token(accounts.list_tokens("admin")[0].token_id, "someone", "leaked")
    with pytest.raises(ConfigError, match="was revoked"):
        bootstrap(accounts, "admin", None, secret)


def test_one_client_failing_many_users_is_throttled(tmp_path: Path) -> None:
    throttle = ThrottlePolicy(source_free_failures=2, delay_initial_s=60)
    rig = make_rig(tmp_path, AccountPolicy(throttle=throttle))
    for name in ("a1", "a2", "a3", "a4"):
        rig.user(name, Role.OPERATOR)
    for name in ("a1", "a2", "a3"):
        with pytest.raises(Unauthorized):
            rig.accounts.login(name, "guess guess guess", "10.0.0.9")
    with pytest.raises(LoginThrottled):
        rig.accounts.login("a4", PASSWORD, "10.0.0.9")  # right password, throttled address
    assert rig.accounts.login("a4", PASSWORD, "10.0.0.10").username == "a4"
    rig.clock.now += 61
    assert rig.accounts.login("a4", PASSWORD, "10.0.0.9").username == "a4"
    audit = rig.central.audit
    assert audit is not None
    assert audit.query(action="login.failed")[0].details["why"] == "throttled"
    rig.close()


def test_the_last_active_admin_cannot_be_demoted_or_disabled(tmp_path: Path) -> None:
    rig: Rig = make_rig(tmp_path)  # the harness config's bootstrap admin is the only admin
    with pytest.raises(InvalidRequest, match="last active administrator"):
        rig.accounts.update_user("admin", "test", role=Role.OPERATOR)
    with pytest.raises(InvalidRequest, match="last active administrator"):
        rig.accounts.update_user("admin", "test", disabled=True)
    rig.user("second", Role.ADMIN)
    assert rig.accounts.update_user("admin", "test", disabled=True).disabled
    rig.close()


def test_cli_explains_that_a_running_server_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "varta.duckdb"
    Database(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); "
            "print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        result = CliRunner().invoke(varta, ["central", "users", "list", "--db", str(path)])
    finally:
        holder.communicate(b"", timeout=10)
    assert result.exit_code == 1
    assert "is `varta central serve` running?" in result.output


def test_password_checks_beyond_capacity_are_refused_not_queued() -> None:
    passwords = Passwords(PasswordHasher.from_parameters(CHEAPEST), concurrency=1, wait_s=0.05)
    hashed = passwords.hash(PASSWORD)
    assert passwords.verify(hashed, PASSWORD) and not passwords.verify(None, PASSWORD)
    assert not passwords.verify("!", PASSWORD)  # a user without a password
    with passwords._slots, pytest.raises(LoginBusy):  # another check holds the one slot
        passwords.verify(hashed, PASSWORD)
    assert passwords.verify(hashed, PASSWORD)
