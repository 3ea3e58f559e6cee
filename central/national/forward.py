"""A region's side of the national hub: signed list sources and forwarding of alerts.

Lists: a ``watchlists.sync`` source with a ``verify_key`` gets a ``Verify`` check (the
export must carry the hub's signature for the list its URL names) and, with a
``token_file``, a bearer token.

Alerts: the built-in webhook endpoint ``national-hub`` receives every change of a
watchlist alert on the forwarded lists (``CentralConfig.forwarded_lists``). It rides on the
webhook outbox (``central/alerts/webhooks.py``): the change is queued in the transaction
that makes it, so it survives restarts and an unreachable hub, and is sent until the hub
answers 2xx, up to ``batch_max`` changes per request in queue order::

    POST <hub>/api/v1/national/alerts
    Authorization: Bearer <token>        X-Varta-Region: <region>
    {"region": "<region>", "changes": [<change>, ...]}

Delivery is at least once; the hub keeps one row per (region, alert id) and ignores
repeats (``central/national/store.py``). Matching and alerting in the region never wait
for the hub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import msgspec

from central.alerts.model import WebhookFilter
from central.alerts.repository import Delivery
from central.alerts.webhooks import Encode, Endpoint
from central.config import NATIONAL_ENDPOINT, CentralConfig, WatchlistSyncConfig
from central.national.hub_export import read_hub_export
from central.national.signing import DIGEST_HEADER, LIST_HEADER, SIGNATURE_HEADER, Verifier
from central.watchlist.importer import ReadFile
from central.watchlist.sync import Verify
from shared.errors import ConfigError, SignatureInvalid

ALERTS_PATH = "/api/v1/national/alerts"
REGION_HEADER = "X-Varta-Region"


def read_token(path: Path, where: str) -> str:
    """An API token from a file (stripped).

    Raises:
        ConfigError: Unreadable or empty.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{where}: cannot read token_file {path}: {err}") from err
    if not token:
        raise ConfigError(f"{where}: token_file {path} is empty")
    return token


def list_verifier(public: str) -> Verify:
    """The check of a hub's export: signed with ``public`` for the list its URL names, and
    built no earlier than the export in force (an older signed export is a replay).

    Raises:
        ConfigError: ``public`` is not an Ed25519 public key.
    """
    verifier = Verifier(public)

    def verify(url: str, headers: Mapping[str, str], digest: str, in_force: str) -> None:
        expected = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        sent = headers.get(DIGEST_HEADER.lower(), digest)
        if sent != digest:
            raise SignatureInvalid(
                f"list {expected!r}: body SHA-256 {digest[:16]}... differs from the hub's "
                f"{sent[:16]}... (altered or truncated on the way)"
            )
        built = headers.get("last-modified", "")
        verifier.verify(
            expected,
            headers.get(LIST_HEADER.lower(), ""),
            built,
            digest,
            headers.get(SIGNATURE_HEADER.lower(), ""),
        )
        if in_force and _when(built, expected) < _when(in_force, expected):
            raise SignatureInvalid(
                f"list {expected!r}: export built {built} is older than the one in force "
                f"({in_force}): a replayed export"
            )

    return verify


def _when(http_date: str, name: str) -> datetime:
    try:
        return parsedate_to_datetime(http_date)
    except (TypeError, ValueError) as err:
        raise SignatureInvalid(
            f"list {name!r}: expected an HTTP date in Last-Modified, got {http_date!r}"
        ) from err


@dataclass(frozen=True)
class SourceSecurity:
    """How a sync source's export is checked and read, and the token it is asked with.

    Attributes:
        verify: The hub signature check, or None for an unsigned source.
        token: Bearer token ('' for none).
        read: The columnar reader of verified hub exports, or None (the usual reader).
    """

    verify: Verify | None
    token: str
    read: ReadFile | None


def source_security(cfg: WatchlistSyncConfig) -> SourceSecurity:
    """A sync source's signature check, reader and bearer token (none when not configured).

    Raises:
        ConfigError: A malformed verify_key or an unreadable token_file.
    """
    where = f"watchlists.sync[{cfg.name}]"
    verify = list_verifier(cfg.verify_key) if cfg.verify_key else None
    token = read_token(cfg.token_file, where) if cfg.token_file is not None else ""
    return SourceSecurity(verify, token, read_hub_export if verify is not None else None)


def hub_endpoint(config: CentralConfig) -> tuple[Endpoint, Encode] | None:
    """The ``national-hub`` webhook endpoint and its body encoding, or None when the
    region forwards nothing.

    Raises:
        ConfigError: The token file is unreadable.
    """
    forward = config.national.forward
    if not forward.url or forward.token_file is None:
        return None
    token = read_token(forward.token_file, "national.forward")
    endpoint = Endpoint(
        filter=WebhookFilter(
            name=NATIONAL_ENDPOINT,
            kinds=frozenset({"watchlist"}),
            lists=frozenset(config.forwarded_lists),
        ),
        url=forward.url.rstrip("/") + ALERTS_PATH,
        secret=token.encode(),
        timeout_s=forward.timeout_s,
        backoff_initial_s=forward.backoff_initial_s,
        backoff_max_s=forward.backoff_max_s,
        failing_after=forward.failing_after,
        batch_max=forward.batch_max,
        headers={"Authorization": f"Bearer {token}", REGION_HEADER: forward.region},
    )
    return endpoint, envelope(forward.region)


def envelope(region: str) -> Encode:
    """The body of a forwarding request: the region and its changes, in queue order."""
    head = b'{"region":' + msgspec.json.encode(region) + b',"changes":['

    def encode(deliveries: Sequence[Delivery]) -> bytes:
        return head + b",".join(d.body for d in deliveries) + b"]}"

    return encode
