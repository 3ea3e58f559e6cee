"""`varta central national` commands: the hub's signing key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

national_app = typer.Typer(no_args_is_help=True)


@national_app.command("keygen")
def keygen_cmd(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Private key file to write (mode 0600).")
    ] = Path("var/keys/national-hub.pem"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> None:
    """Make the hub's Ed25519 signing key; prints the public key regions pin as verify_key."""
    from central.national.signing import generate, key_id
    from shared.errors import ConfigError

    try:
        public = generate(out, overwrite=force)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"wrote {out} (key id {key_id(public)}); set national.signing_key_file", err=True)
    typer.echo(public)


@national_app.command("public-key")
def public_key_cmd(
    key: Annotated[Path, typer.Argument(help="The hub's private key file.")],
) -> None:
    """Print the public key of a hub's signing key (what regions set as verify_key)."""
    from central.national.signing import Signer
    from shared.errors import ConfigError

    try:
        typer.echo(Signer.load(key).public)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
