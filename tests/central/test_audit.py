"""The audit log's hash chain: appends from many threads, and tampering that verify names."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from central.audit import GENESIS, AuditLog
from central.store.db import Database
from varta.cli import app as varta


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "varta.duckdb")
    yield database
    database.close()


def _filled(db: Database, rows: int = 5) -> AuditLog:
    clock = iter(range(1_800_000_000, 1_800_001_000))
    audit = AuditLog(db, clock=lambda: float(next(clock)))
    for i in range(1, rows + 1):
        audit.record(f"user{i}", "search", f"plate:AT{i:04d}BB", "case 12/345", {"n": i, "ü": "ї"})
    return audit


def test_records_chain_and_verify(db: Database) -> None:
    audit = _filled(db)
    result = audit.verify()
    assert result.ok and result.rows == 5 and result.problems == []
    assert result.head == audit.head[1] != GENESIS
    first = audit.query(actor="user1")[0]
    assert (first.id, first.at, first.action, first.reason) == (
        1,
        1_800_000_000.0,
        "search",
        "case 12/345",
    )
    assert first.details == {"n": 1, "ü": "ї"}


def test_empty_log_verifies(db: Database) -> None:
    assert AuditLog(db).verify() == AuditLog(db).verify()
    assert AuditLog(db).verify().ok and AuditLog(db).verify().head == GENESIS


TAMPERING = [
    (
        "UPDATE audit_log SET reason = 'no reason' WHERE id = 3",
        ["row 3: content does not match its hash (edited?)"],
    ),
    (
        "UPDATE audit_log SET actor = 'someone' WHERE id = 1",
        ["row 1: content does not match its hash (edited?)"],
    ),
    (
        """UPDATE audit_log SET details = '{"n":9}' WHERE id = 5""",
        ["row 5: content does not match its hash (edited?)"],
    ),
    (
        'UPDATE audit_log SET "at" = "at" + INTERVAL 1 SECOND WHERE id = 2',
        ["row 2: content does not match its hash (edited?)"],
    ),
    ("DELETE FROM audit_log WHERE id = 3", ["row 3 missing before row 4 (deleted?)"]),
    ("DELETE FROM audit_log WHERE id IN (2, 3)", ["row 2..3 missing before row 4 (deleted?)"]),
    ("DELETE FROM audit_log WHERE id = 1", ["row 1 missing before row 2 (deleted?)"]),
    (
        # swap rows 2 and 3 (ids and chain links stay in place, contents move)
        "UPDATE audit_log SET actor = CASE id WHEN 2 THEN 'user3' ELSE 'user2' END, "
        "target = CASE id WHEN 2 THEN 'plate:AT0003BB' ELSE 'plate:AT0002BB' END "
        "WHERE id IN (2, 3)",
        [
            "row 2: content does not match its hash (edited?)",
            "row 3: content does not match its hash (edited?)",
        ],
    ),
]


@pytest.mark.parametrize(("sql", "problems"), TAMPERING)
def test_tampering_is_detected_and_named(db: Database, sql: str, problems: list[str]) -> None:
    _filled(db)
    db.writer.call(lambda con: con.execute(sql))  # an attacker's edit of the file
    result = AuditLog(db).verify()
    assert not result.ok
    assert result.problems == problems


def test_rehashed_edit_still_breaks_the_next_link(db: Database) -> None:
    """Recomputing the edited row's own hash is not enough: the next row points at the old one."""
    from central.audit.log import row_hash

    audit = _filled(db)
    with db.reader() as con:
        row = con.execute(
            'SELECT id, epoch_us("at"), actor, action, target, details::VARCHAR, prev_hash '
            "FROM audit_log WHERE id = 2"
        ).fetchone()
    assert row is not None
    forged = row_hash(row[6], row[0], row[1], row[2], row[3], row[4], "forged", row[5])
    db.writer.call(
        lambda con: con.execute(
            "UPDATE audit_log SET reason = 'forged', hash = ? WHERE id = 2", [forged]
        )
    )
    assert audit.verify().problems == ["row 3: prev_hash does not match the hash of row 2"]


def test_cut_tail_is_caught_by_the_anchor(db: Database) -> None:
    audit = _filled(db)
    anchor = audit.verify().head
    db.writer.call(lambda con: con.execute("DELETE FROM audit_log WHERE id = 5"))
    reopened = AuditLog(db)
    assert reopened.verify().ok  # the chain alone cannot see a cut tail ...
    result = reopened.verify(anchor=anchor)  # ... the noted head can
    assert not result.ok
    assert result.problems == [
        f"anchor {anchor} is not the hash of any row (rows cut or rewritten)"
    ]


def test_reopened_log_continues_the_chain(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.duckdb")
    _filled(db, 3)
    db.close()
    db = Database(tmp_path / "a.duckdb")
    audit = AuditLog(db)
    audit.record("later", "export", "case:1")
    assert audit.verify().ok and audit.verify().rows == 4 and audit.head[0] == 4
    db.close()


def test_concurrent_records_while_ingest_writes(db: Database) -> None:
    """Audit appends from handler threads interleave with ingest's jobs on the one writer."""
    audit = AuditLog(db)
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        n = 0

        def insert(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "INSERT INTO agents (agent_id, first_seen, last_seen) "
                "SELECT 'a' || (? * 100 + i), now(), now() FROM range(100) t(i)",
                [n],
            )

        while not stop.is_set():
            db.writer.call(insert)
            n += 1

    def handler(k: int) -> None:
        try:
            for i in range(50):
                audit.record(f"op{k}", "search", f"plate:{i}", details={"i": i})
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    writer = threading.Thread(target=ingest)
    writer.start()
    threads = [threading.Thread(target=handler, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    writer.join()
    assert errors == []
    result = audit.verify()
    assert result.ok and result.rows == 200


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(varta, list(args))
    return result.exit_code, result.output


def test_cli_verify_prints_ok_or_the_broken_rows(tmp_path: Path) -> None:
    path = tmp_path / "varta.duckdb"
    db = Database(path)
    head = _filled(db).verify().head
    db.close()
    code, out = _run("central", "audit", "verify", "--db", str(path))
    assert code == 0 and out.strip() == f"OK: 5 rows, head {head}"
    db = Database(path)
    db.writer.call(lambda con: con.execute("DELETE FROM audit_log WHERE id = 2"))
    db.close()
    code, out = _run("central", "audit", "verify", "--db", str(path), "--anchor", head)
    assert code == 1
    assert "row 2 missing before row 3 (deleted?)" in out


def test_cli_users_and_tokens_are_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "varta.duckdb")
    monkeypatch.setenv("OLENA_PW", "correct horse battery staple")
    code, out = _run(
        "central",
        "users",
        "add",
        "olena",
        "--role",
        "operator",
        "--password-env",
        "OLENA_PW",
        "--db",
        path,
    )
    assert code == 0 and "olena (operator) created" in out
    code, out = _run(
        "central", "users", "add", "patrol", "--role", "police-api", "--no-password", "--db", path
    )
    assert code == 0
    code, out = _run(
        "central",
        "tokens",
        "create",
        "--user",
        "patrol",
        "-s",
        "alerts:read",
        "--expires-days",
        "7",
        "--db",
        path,
    )
    secret = out.strip().splitlines()[-1]
    assert code == 0 and secret.startswith("vt_")
    code, out = _run("central", "tokens", "list", "--db", path)
    token_id = out.split()[0]
    assert code == 0 and secret not in out and "live" in out
    code, out = _run("central", "tokens", "revoke", token_id, "--reason", "test", "--db", path)
    assert code == 0
    code, out = _run(
        "central", "users", "add", "xy", "--role", "king", "--no-password", "--db", path
    )
    assert code == 1 and "expected a role from" in out
    db = Database(path)
    with db.reader() as con:
        rows = con.execute("SELECT action, target FROM audit_log ORDER BY id").fetchall()
    db.close()
    assert rows == [
        ("user.create", "user:olena"),
        ("user.create", "user:patrol"),
        ("token.create", f"token:{token_id}"),
        ("token.revoke", f"token:{token_id}"),
    ]
