"""Process logging: plain text by default, JSON lines when configured; secrets redacted.

``configure`` installs one stderr handler on the root logger (journald and log shippers
read stderr). Its format comes from the ``logging`` section of the process's config,
overridden by ``VARTA_LOG_FORMAT`` (``text`` or ``json``) and ``VARTA_LOG_LEVEL`` when set,
so an operator can switch without editing the file.

JSON lines carry ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``msg``,
``thread``, ``exc`` when there is a traceback, and any ``extra=`` fields of the call.

:class:`RedactFilter` sits on that handler, so it sees every record of every logger
before any formatter. It replaces, in the message, the traceback and ``extra`` fields:

* values of ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key names a
  secret (password, passwd, secret, token, api key, authorization, cookie);
* ``Bearer <token>`` and the password in ``scheme://user:password@host`` URLs;
* any literal secret the process registered with :meth:`RedactFilter.add` (its CURVE
  secret key, webhook secrets), wherever it appears.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.config import LoggingConfig

FORMAT_ENV, LEVEL_ENV = "VARTA_LOG_FORMAT", "VARTA_LOG_LEVEL"
MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie)"
_SECRET_NAME = re.compile(rf"(?i){_SECRET_WORD}")
_PAIR = re.compile(
    rf"""(?ix)
    (?P<key>[\w.-]*{_SECRET_WORD}[\w.-]*)       # a key that names a secret
    (?P<sep>["']?\s*[=:]\s*["']?)               # = or : (JSON and repr quotes too)
    (?P<scheme>(?:bearer|basic)\s+)?
    (?P<value>[^\s"',;&)}}\]]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^/\s@]+@")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RedactFilter(logging.Filter):
    """Masks secrets in every record that passes (see the module docstring)."""

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | bytes) -> None:
        """Mask this literal value wherever it appears (values under 6 characters are
        ignored: masking them would mangle ordinary words)."""
        text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
        if len(text.strip()) >= 6:
            self._secrets.add(text.strip())

    def redact(self, text: str) -> str:
        """``text`` with every secret it holds masked."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        text = _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['scheme'] or ''}{MASK}", text)
        text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
        return _USERINFO.sub(lambda m: f"{m[1]}:{MASK}@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (message, traceback, extras); never drops it."""
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _STANDARD:
                continue
            if _SECRET_NAME.search(key):
                setattr(record, key, MASK)
            elif isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (see the module docstring for the fields)."""
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in body:
                body[key] = value if isinstance(value, int | float | bool | None) else str(value)
        return json.dumps(body, ensure_ascii=False)


def configure(
    config: LoggingConfig | None = None,
    secrets: Iterable[str | bytes] = (),
    stream: TextIO | None = None,
) -> RedactFilter:
    """Replace the root logger's handlers with one redacting stderr handler.

    Args:
        config: Format and level; the environment overrides both (module docstring).
        secrets: Literal values to mask wherever they appear.
        stream: Where records go (default: stderr).

    Returns:
        The handler's filter, to register secrets read later.
    """
    config = config or LoggingConfig()
    fmt = os.environ.get(FORMAT_ENV, "").strip().lower() or config.format
    level = os.environ.get(LEVEL_ENV, "").strip().upper() or config.level
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    redact = RedactFilter(secrets)
    handler.addFilter(redact)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return redact
