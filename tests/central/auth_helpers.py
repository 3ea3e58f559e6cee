"""A real central with accounts on an injectable clock, role tokens and a stored sighting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from central.accounts import SCOPES, AccountPolicy, AccountService, Role
from central.accounts.model import TokenCreated
from central.app import Central, build
from tests.harness import central_config, make_keyring

PASSWORD = "correct horse battery staple"
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


@dataclass
class Clock:
    """A settable clock: ``clock()`` is the time, ``clock.now += 3600`` moves it."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A built (not started) central whose account service runs on ``clock``."""

    central: Central
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def accounts(self) -> AccountService:
        assert self.central.accounts is not None
        return self.central.accounts

    def close(self) -> None:
        """Close storage of a rig whose app never ran (its lifespan would)."""
        self.central.thumbs.close()
        self.central.db.close()

    def user(self, name: str, role: Role | str, password: str | None = PASSWORD) -> str:
        """Create a user; return the name."""
        self.accounts.create_user(name, role, password, "test")
        return name

    def api_token(
        self, role: Role | str, scopes: list[str] | None = None, **kw: Any
    ) -> TokenCreated:
        """A fresh user with ``role`` and an API token (every scope unless given)."""
        name = self.user(f"{role}-{len(self.accounts.list_users())}", role, None)
        wanted = sorted(SCOPES) if scopes is None else scopes
        return self.accounts.create_token(name, wanted, "test", **kw)

    def token(self, role: Role | str, scopes: list[str] | None = None, **kw: Any) -> str:
        """The secret of a fresh ``api_token``."""
        return self.api_token(role, scopes, **kw).secret


def make_rig(tmp: Path, policy: AccountPolicy | None = None) -> Rig:
    """Build central on real DuckDB in ``tmp``; swap in accounts on a test clock."""
    ring = make_keyring(tmp / "keys", [])
    central = build(central_config(ring, tmp / "central"))
    clock = Clock()
    assert central.audit is not None
    central.accounts = AccountService(
        central.db,
        central.audit,
        policy or AccountPolicy(),
        clock=clock,
        hasher=PasswordHasher.from_parameters(CHEAPEST),
    )
    return Rig(central, clock)


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def store_sighting(central: Central, thumbs: int = 1, captured_at: float = 1.0) -> str:
    """Store one sighting with ``thumbs`` thumbnails the way ingest does; return its id."""
    event_id = str(uuid.uuid4())
    refs = central.thumbs.append([JPEG] * thumbs)
    central.thumbs.flush()
    structs = [
        {"role": "plate", "width": 10, "height": 5, "pack": p, "offset": o, "length": n}
        for p, o, n in refs
    ]
    central.db.writer.call(
        lambda con: con.execute(
            "INSERT INTO sightings (event_id, agent_id, camera_id, captured_at, received_at, "
            "plate, track_frames, track_seconds, thumbnails) "
            "VALUES (?::UUID, 'a1', 'cam-1', to_timestamp(?), to_timestamp(?), 'AT1234BB', "
            "3, 0.5, ?)",
            [event_id, captured_at, captured_at + 1, structs],
        )
    )
    return event_id
