"""Ed25519 signatures of the wanted lists a national hub publishes.

The hub holds a private key (PEM PKCS#8, made by ``varta central national keygen``, mode
0600); each region pins the hub's public key, written ``ed25519:<base64 of the 32 raw
bytes>``. What is signed is the list's name, when the export was built and the SHA-256 of
the exact body bytes::

    b"varta-national-list/1\\n" + name + b"\\n" + last_modified + b"\\n" + sha256(body).hexdigest()

so a signature cannot be used for another list, an older export cannot be passed off as
newer (a region refuses an export built before the one in force), and both sides hash the
body as a stream (a 5M-entry export never has to be in memory at once). The signature
travels in ``X-Varta-Signature: ed25519=<base64>``, the name in ``X-Varta-List``, the
build time in ``Last-Modified`` (HTTP date) and the digest in ``X-Varta-Content-SHA256``;
the verifier recomputes the digest from the bytes it received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.errors import ConfigError, SignatureInvalid

PREFIX: Final = "ed25519:"
SIGNATURE_HEADER: Final = "X-Varta-Signature"
LIST_HEADER: Final = "X-Varta-List"
DIGEST_HEADER: Final = "X-Varta-Content-SHA256"
KEY_ID_HEADER: Final = "X-Varta-Key-Id"
_CONTEXT: Final = b"varta-national-list/1\n"


def signed_message(name: str, last_modified: str, digest_hex: str) -> bytes:
    """The bytes a list's signature covers."""
    return b"\n".join([_CONTEXT + name.encode(), last_modified.encode(), digest_hex.encode()])


def encode_public(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64>`` of a public key (what regions pin)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def key_id(public: str) -> str:
    """A short stable id of a public key (16 hex digits), sent so logs can tell keys apart."""
    return hashlib.sha256(public.encode()).hexdigest()[:16]


def decode_public(text: str) -> Ed25519PublicKey:
    """A pinned public key from its ``ed25519:<base64>`` form.

    Raises:
        ConfigError: Not of that form.
    """
    if not text.startswith(PREFIX):
        raise ConfigError(f"expected a public key 'ed25519:<base64>', got {text[:20]!r}")
    try:
        raw = base64.b64decode(text[len(PREFIX) :], validate=True)
    except binascii.Error as err:
        raise ConfigError(f"public key {text!r} is not valid base64: {err}") from err
    if len(raw) != 32:
        raise ConfigError(f"expected a 32-byte Ed25519 public key, got {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def generate(path: Path, *, overwrite: bool = False) -> str:
    """Write a new private key to ``path`` (mode 0600) and return its public key.

    Raises:
        ConfigError: ``path`` exists and ``overwrite`` is false.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as err:
        raise ConfigError(f"{path} exists; pass --force to replace the hub's key") from err
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    path.chmod(0o600)
    return encode_public(key.public_key())


@dataclass(frozen=True)
class Signer:
    """Signs published lists with the hub's private key."""

    key: Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path) -> Signer:
        """The key in a PEM file.

        Raises:
            ConfigError: Unreadable, not PEM, or not an Ed25519 key.
        """
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"national.signing_key_file: cannot read {path}: {err}") from err
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"national.signing_key_file: {path} is not a PEM key: {err}") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"national.signing_key_file: expected an Ed25519 key in {path}, "
                f"got {type(key).__name__}"
            )
        return cls(key)

    @property
    def public(self) -> str:
        """The public key regions pin."""
        return encode_public(self.key.public_key())

    def sign(self, name: str, last_modified: str, digest_hex: str) -> str:
        """The ``X-Varta-Signature`` value for list ``name`` built at ``last_modified`` (HTTP
        date) whose body has that SHA-256."""
        signature = self.key.sign(signed_message(name, last_modified, digest_hex))
        return "ed25519=" + base64.b64encode(signature).decode()


@dataclass(frozen=True)
class Verifier:
    """Checks a hub's list against the pinned public key.

    Attributes:
        public: The pinned key, ``ed25519:<base64>``.
    """

    public: str

    def __post_init__(self) -> None:
        decode_public(self.public)  # a wrong key fails at start, not at the first sync

    def verify(
        self,
        expected_name: str,
        header_name: str,
        last_modified: str,
        digest_hex: str,
        signature: str,
    ) -> None:
        """Raise unless ``signature`` signs list ``header_name``, built at ``last_modified``,
        with body digest ``digest_hex``.

        Args:
            expected_name: The hub list the URL asked for.
            header_name: The list named in ``X-Varta-List``.
            last_modified: The ``Last-Modified`` header (when the hub built the export).
            digest_hex: SHA-256 of the bytes received (computed here, not taken on trust).
            signature: The ``X-Varta-Signature`` value.

        Raises:
            SignatureInvalid: No or malformed signature, another list, or a bad signature.
        """
        if not signature:
            raise SignatureInvalid(f"list {expected_name!r}: expected a signed export, got none")
        if header_name != expected_name:
            raise SignatureInvalid(
                f"expected list {expected_name!r} from the hub, got {header_name!r}"
            )
        scheme, _, value = signature.partition("=")
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as err:
            raise SignatureInvalid(f"list {expected_name!r}: signature is not base64") from err
        if scheme != "ed25519" or len(raw) != 64:
            raise SignatureInvalid(
                f"list {expected_name!r}: expected 'ed25519=<64-byte base64>', "
                f"got {signature[:24]!r}"
            )
        try:
            message = signed_message(header_name, last_modified, digest_hex)
            decode_public(self.public).verify(raw, message)
        except InvalidSignature as err:
            raise SignatureInvalid(
                f"list {expected_name!r}: signature does not verify with key "
                f"{key_id(self.public)} (body altered or signed by another key)"
            ) from err
