"""Failed logins: growing waits that never lock a real user out, a bounded audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.accounts import AccountPolicy, Role
from central.accounts.login import LoginThrottled, ThrottlePolicy, source_of
from central.audit import AuditLog
from shared.errors import Unauthorized
from tests.central.auth_helpers import PASSWORD, Rig, make_rig

WRONG = "not the password at all"


UNTHROTTLED = {"free_failures": 10**6, "source_free_failures": 10**6,
               "account_free_failures": 10**6}  # fmt: skip


def _rig(tmp_path: Path, **throttle: float) -> Rig:
    policy = AccountPolicy(throttle=ThrottlePolicy(**throttle), refusal_window_s=600)  # type: ignore[arg-type]
    rig = make_rig(tmp_path, policy)
    rig.user("olena", Role.OPERATOR)
    return rig


def _audit(rig: Rig) -> AuditLog:
    assert rig.central.audit is not None
    return rig.central.audit


def _fail(rig: Rig, user: str, client: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized):
            rig.accounts.login(user, WRONG, client)


def _wait(rig: Rig, user: str, client: str, password: str = PASSWORD) -> float:
    """The wait a login is refused with (0 when it is let through to the check)."""
    try:
        rig.accounts.login(user, password, client)
    except LoginThrottled as err:
        return err.retry_after_s
    except Unauthorized:
        return 0.0
    return 0.0


def test_waits_double_per_failure_and_other_sources_are_never_held(tmp_path: Path) -> None:
    rig = _rig(tmp_path, free_failures=3, delay_initial_s=1, delay_max_s=8)
    _fail(rig, "olena", "10.0.0.66", 3)
    waits = []
    for _ in range(5):
        _fail(rig, "olena", "10.0.0.66")
        waits.append(_wait(rig, "olena", "10.0.0.66"))  # even the right password waits
        assert rig.accounts.login("olena", PASSWORD, "10.0.0.7").username == "olena"
        rig.clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 8]
    assert rig.accounts.login("olena", PASSWORD, "10.0.0.66").username == "olena"
    _fail(rig, "olena", "10.0.0.66", 3)  # a success starts the pair afresh
    assert _wait(rig, "olena", "10.0.0.66") == 0
    rig.close()


def test_failures_are_forgotten_after_a_quiet_hour(tmp_path: Path) -> None:
    rig = _rig(tmp_path, free_failures=1, forget_s=3600)
    _fail(rig, "olena", "10.0.0.66", 2)
    rig.clock.now += 3599
    _fail(rig, "olena", "10.0.0.66")  # still remembered: the 3rd failure waits 2 s
    assert _wait(rig, "olena", "10.0.0.66") == 2
    rig.clock.now += 3600
    _fail(rig, "olena", "10.0.0.66")  # forgotten: this is a first (free) failure again
    assert _wait(rig, "olena", "10.0.0.66") == 0
    rig.close()


def test_spraying_one_password_over_many_names_makes_the_source_wait(tmp_path: Path) -> None:
    rig = _rig(tmp_path, source_free_failures=5, delay_initial_s=30)
    for i in range(6):
        _fail(rig, f"user{i}", "10.0.0.66")  # each name once: no pair reaches its limit
    assert _wait(rig, "olena", "10.0.0.66") == 30
    assert rig.accounts.login("olena", PASSWORD, "10.0.0.7").username == "olena"
    rig.close()


def test_an_attack_from_many_sources_cannot_lock_the_owner_out(tmp_path: Path) -> None:
    rig = _rig(tmp_path, account_free_failures=20, delay_initial_s=60)
    for i in range(40):  # a botnet: every address fails once, none reaches its own limit
        _fail(rig, "olena", f"198.51.100.{i}")
    assert _wait(rig, "olena", "198.51.100.1") > 60  # a source that failed on her waits
    assert _wait(rig, "ghost", "198.51.100.1") == 0  # on her only
    assert rig.accounts.login("olena", PASSWORD, "10.0.0.7").username == "olena"
    rig.close()


def test_unknown_names_are_throttled_like_real_ones(tmp_path: Path) -> None:
    """Whether a wait is imposed never says whether the account exists."""
    rig = _rig(tmp_path, free_failures=2)
    _fail(rig, "olena", "10.0.0.66", 3)
    _fail(rig, "nobody", "10.0.0.66", 3)
    assert _wait(rig, "olena", "10.0.0.66") == _wait(rig, "nobody", "10.0.0.66") == 1
    rig.close()


@pytest.mark.parametrize(
    ("client", "source"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_host_is_one_source_per_64(client: str, source: str) -> None:
    assert source_of(client) == source


def test_a_flood_of_refusals_is_two_audit_rows_per_name_source_and_window(
    tmp_path: Path,
) -> None:
    rig = _rig(tmp_path, **UNTHROTTLED)
    before = _audit(rig).head[0]
    _fail(rig, "olena", "10.0.0.66", 300)
    _fail(rig, "nobody", "10.0.0.66", 2)
    assert _audit(rig).head[0] - before == 2  # the first refusal of each name, at once
    rig.clock.now += 600  # the window ends; the next refusal (or request) writes the rest
    _fail(rig, "olena", "10.0.0.66")
    rows = _audit(rig).query(action="login.failed")
    assert _audit(rig).head[0] - before == 5
    summary = {r.target: r.details for r in rows[1:3]}
    assert summary["user:olena"]["count"] == 299
    assert summary["user:olena"]["reasons"] == {"bad password": 299}
    assert summary["user:nobody"]["count"] == 1
    assert summary["user:olena"]["from"].endswith("+00:00")
    assert rows[0].details == {"why": "bad password", "client": "10.0.0.66", "count": 1,
                               "window_s": 600.0}  # fmt: skip
    rig.close()


def test_a_source_trying_many_names_is_folded_into_one_row(tmp_path: Path) -> None:
    rig = _rig(tmp_path, **UNTHROTTLED)
    before = _audit(rig).head[0]
    for i in range(200):
        _fail(rig, f"user{i}", "10.0.0.66")
    rig.accounts.flush_refusals()
    rows = _audit(rig).query(action="login.failed", limit=1000)
    assert _audit(rig).head[0] - before == len(rows) == 22  # 20 names, '*' at once and after
    assert rows[0].target == "user:*" and rows[0].details["count"] == 179
    rig.close()


def test_throttled_attempts_are_audited_but_not_hashed_or_counted(tmp_path: Path) -> None:
    rig = _rig(tmp_path, free_failures=1, delay_initial_s=5)
    _fail(rig, "olena", "10.0.0.66", 2)
    for _ in range(50):
        assert _wait(rig, "olena", "10.0.0.66") == 5  # the wait does not grow by asking
    rig.accounts.flush_refusals()
    summary = _audit(rig).query(action="login.failed")[0]
    assert summary.details["reasons"] == {"bad password": 1, "throttled": 50}
    rig.close()
