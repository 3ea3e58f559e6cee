"""The national hub built from central's config (the composition root calls ``build_hub``)."""

from __future__ import annotations

import time
from pathlib import Path

from central.config import CentralConfig
from central.national.hub import NationalHub
from central.national.publish import ListPublisher
from central.national.signing import Signer
from central.national.store import NationalAlertStore
from central.store.db import Database
from central.watchlist.service import WatchlistService


def build_hub(
    config: CentralConfig, db: Database, watchlists: WatchlistService
) -> NationalHub | None:
    """The hub's service when ``national.hub`` is set, else None.

    Raises:
        ConfigError: The signing key is missing or not an Ed25519 key.
    """
    national = config.national
    if not national.hub or national.signing_key_file is None:
        return None
    signer = Signer.load(national.signing_key_file)
    folder = Path(config.storage.data_dir) / "national"
    publisher = ListPublisher(
        db, signer, list(national.publish), folder, lambda: watchlists.generation
    )
    return NationalHub(publisher, NationalAlertStore(db, time.time))
