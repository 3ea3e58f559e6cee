"""Bearer secrets: generation, digests, and password hashing policy."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

from argon2 import PasswordHasher

from central.accounts.model import SESSION_PREFIX, TOKEN_PREFIX, CredentialKind
from shared.errors import InvalidRequest

USERNAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
MIN_SECRET: Final = 32


def new_secret(kind: CredentialKind) -> str:
    """A fresh bearer secret: prefix (``vs_`` session, ``vt_`` API token) + 256 random bits."""
    prefix = SESSION_PREFIX if kind == "session" else TOKEN_PREFIX
    return prefix + secrets.token_urlsafe(32)


def new_id(kind: CredentialKind) -> str:
    """A public credential id (safe to show, log and pass to revoke)."""
    return ("s_" if kind == "session" else "t_") + secrets.token_hex(8)


def digest(secret: str) -> str:
    """The stored form of a bearer secret; the secret itself has 256 bits, so no salt."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_username(username: str) -> str:
    """Return ``username`` if acceptable, else raise ``InvalidRequest`` saying what is."""
    if not USERNAME.fullmatch(username):
        raise InvalidRequest(
            "expected a user name of 2-64 characters a-z 0-9 . _ - starting with a letter "
            f"or digit, got {username[:80]!r}"
        )
    return username


def check_password(password: str) -> str:
    """Return ``password`` if long enough, else raise ``InvalidRequest`` (no echo of it)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"expected a password of {MIN_PASSWORD}-{MAX_PASSWORD} characters, got {len(password)}"
        )
    return password


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, 64 MiB, p=4)."""
    return PasswordHasher()
