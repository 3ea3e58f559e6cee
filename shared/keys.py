"""CURVE key pairs: ``varta keys gen`` and the allow-list central loads.

Key files are ZeroMQ certificate files (``NAME.key`` public, ``NAME.key_secret`` secret).
Central allow-lists agents by the public key files in one directory; the file name (without
``.key``) is the agent id bound to that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from shared.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair in z85 text form."""

    public: bytes
    secret: bytes


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` into ``directory`` and return their paths."""
    import zmq.auth

    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(directory), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def load_pair(secret_file: Path) -> KeyPair:
    """Load a key pair from a ``.key_secret`` file."""
    import zmq.auth

    if not secret_file.is_file():
        raise ConfigError(f"CURVE secret key file {secret_file} does not exist (varta keys gen)")
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:
        raise ConfigError(f"{secret_file} holds no secret key; pass the .key_secret file")
    return KeyPair(public=public, secret=secret)


def load_public(public_file: Path) -> bytes:
    """Load the public key from a ``.key`` (or ``.key_secret``) file."""
    import zmq.auth

    if not public_file.is_file():
        raise ConfigError(f"CURVE public key file {public_file} does not exist")
    public, _ = zmq.auth.load_certificate(str(public_file))
    return public


def load_allow_list(directory: Path) -> dict[bytes, str]:
    """Map each allow-listed public key (z85) to its agent id (the file name)."""
    if not directory.is_dir():
        raise ConfigError(f"agent allow-list directory {directory} does not exist")
    return {load_public(f): f.name.removesuffix(".key") for f in sorted(directory.glob("*.key"))}


@app.command("gen")
def gen_command(
    name: Annotated[str, typer.Argument(help="Key name: the agent id, or 'central'.")],
    out: Annotated[Path, typer.Option(help="Directory to write the key files into.")] = Path(
        "var/keys"
    ),
    allow: Annotated[
        Path | None,
        typer.Option(help="Also copy the public key into this central allow-list directory."),
    ] = None,
) -> None:
    """Generate a CURVE key pair NAME.key / NAME.key_secret."""
    public, secret = generate(out, name)
    typer.echo(f"public key: {public}\nsecret key: {secret} (keep private, mode 0600)")
    if allow is not None:
        allow.mkdir(parents=True, exist_ok=True)
        target = allow / public.name
        target.write_bytes(public.read_bytes())
        typer.echo(f"allow-listed: {target}")
