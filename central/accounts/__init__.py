"""User accounts, roles, login sessions and scoped API tokens.

Names load on first use, so ``varta central --help`` (which imports
``central.accounts.cli``) does not import DuckDB or argon2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central.accounts.model import SCOPES, Principal, Role
    from central.accounts.service import AccountPolicy, AccountService

__all__ = ["SCOPES", "AccountPolicy", "AccountService", "Principal", "Role"]

_HOME = {
    "SCOPES": "model",
    "Principal": "model",
    "Role": "model",
    "AccountPolicy": "service",
    "AccountService": "service",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"central.accounts.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
