"""CURVE key pairs: ``varta keys gen`` and the allow-list central loads.

Key files are ZeroMQ certificate files (``NAME.key`` public, ``NAME.key_secret`` secret).
Central allow-lists agents by the public key files in one directory; the file name (without
``.key``) is the agent id bound to that key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from shared import durable
from shared.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair in z85 text form."""

    public: bytes
    secret: bytes


class KeyExists(ConfigError):
    """A key file is already there and overwriting it was not asked for."""


def generate(directory: Path, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` into ``directory`` and return their paths.

    The secret file has mode 0600 from its first byte (it is created so, never chmod-ed
    after writing). Each file is written to a temporary name, synced and then put in
    place, so a crash or a full disk leaves the old pair or no file, never a torn key.

    Args:
        directory: Where the key files go (created if missing).
        name: The key name: an agent id, or ``central``; a plain file name.
        overwrite: Replace an existing pair; without it an existing file is an error.

    Raises:
        KeyExists: a key file of that name exists and ``overwrite`` is false.
        ConfigError: ``name`` is not a plain file name.
        OSError: the files could not be written (nothing of the new pair is left behind).
    """
    import zmq

    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"key name must be a plain file name, got {name!r}")
    public_file, secret_file = directory / f"{name}.key", directory / f"{name}.key_secret"
    if not overwrite:
        refuse_existing([public_file, secret_file])
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    # Both files are written and synced before either is put in place.
    staged_secret = durable.stage(secret_file, _certificate(_SECRET_BANNER, stamp, public, secret))
    try:
        staged_public = durable.stage(
            public_file, _certificate(_PUBLIC_BANNER, stamp, public), 0o644
        )
    except BaseException:
        staged_secret.unlink(missing_ok=True)
        raise
    try:
        _commit(staged_secret, secret_file, overwrite)
    except BaseException:
        staged_public.unlink(missing_ok=True)
        raise
    try:
        _commit(staged_public, public_file, overwrite)
    except BaseException:
        if not overwrite:
            secret_file.unlink(missing_ok=True)  # no new secret without its public half
        raise
    return public_file, secret_file


def refuse_existing(paths: Iterable[Path]) -> None:
    """Raise :class:`KeyExists` naming the first of ``paths`` that exists."""
    for path in paths:
        if path.exists():
            raise KeyExists(f"{path} exists; pass --force to replace it")


def write_private(path: Path, data: bytes, overwrite: bool = False, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically, the file created with ``mode`` from the start.

    The bytes go to a temporary file opened with ``O_EXCL`` and ``mode`` (so no other user
    can ever open it) and are synced; the file is then renamed over ``path`` (``overwrite``)
    or hard-linked to it, which fails with :class:`KeyExists` if ``path`` exists.
    """
    _commit(durable.stage(path, data, mode), path, overwrite)


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    try:
        durable.commit(tmp, path, overwrite=overwrite)
    except FileExistsError as err:
        raise KeyExists(f"{path} exists; pass --force to replace it") from err


_SECRET_BANNER = """\
#   ****  Generated on {stamp} by varta keys gen  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.
"""
_PUBLIC_BANNER = """\
#   ****  Generated on {stamp} by varta keys gen  ****
#   ZeroMQ CURVE Public Certificate
#   Copy it to the other side (central's allow-list directory, or the agents).
"""


def _certificate(banner: str, stamp: str, public: bytes, secret: bytes | None = None) -> bytes:
    """A ZeroMQ certificate file, in the layout ``zmq.auth.load_certificate`` reads."""
    lines = [
        banner.format(stamp=stamp),
        "metadata",
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return ("\n".join(lines) + "\n").encode()


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
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing key files of that name.")
    ] = False,
) -> None:
    """Generate a CURVE key pair NAME.key / NAME.key_secret (never overwrites without --force)."""
    target = None if allow is None else allow / f"{name}.key"
    try:
        if not force and target is not None:
            refuse_existing([target])  # checked first: refuse before writing anything
        public, secret = generate(out, name, overwrite=force)
        typer.echo(f"public key: {public}\nsecret key: {secret} (keep private, mode 0600)")
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_private(target, public.read_bytes(), force, 0o644)
            typer.echo(f"allow-listed: {target}")
    except (ConfigError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
