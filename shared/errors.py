"""The project's exception tree. HTTP status mapping lives in one place: central/api/errors.py."""

from __future__ import annotations


class VartaError(Exception):
    """Base of every error Varta raises on purpose."""


class ConfigError(VartaError):
    """A configuration file or value is invalid; the message names the location."""


class NotFound(VartaError):
    """A requested object does not exist."""


class InvalidRequest(VartaError):
    """A request's parameters are not acceptable; the message says what was expected."""


class Conflict(VartaError):
    """The object already exists or its state does not allow the change."""


class Forbidden(VartaError):
    """The caller may not do this."""


class Unauthorized(VartaError):
    """The caller did not prove who they are."""


class TooManyRequests(VartaError):
    """The caller must wait before trying again.

    Attributes:
        retry_after_s: How long to wait, in seconds.
    """

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelError(VartaError):
    """A model file is missing or failed verification."""


class ModelMissing(ModelError):
    """A model file is not in the model store; the message names it and the fix command."""


class ModelCorrupt(ModelError):
    """A model file's sha256 differs from the manifest; the message gives both digests."""


class SourceUnavailable(VartaError):
    """An external source (file drop, registry URL) could not be read; the message says why."""


class SignatureInvalid(VartaError):
    """A signed document (a national hub's wanted list) does not verify against the pinned
    public key, or carries no signature; the message says which list and why."""
