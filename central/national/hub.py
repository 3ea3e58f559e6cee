"""The national hub's service: published lists, and the alerts regions forward to it.

A region proves who it is with an API token of the hub user named after it (scope
``national:forward``); the region a request names must be that user, so one region can
never write another's alerts. Changes are checked one by one, as ``shared/wire.py``'s
``split_batch`` does: a malformed change is refused (listed in the answer, counted) and
the others are stored, so one bad change never holds a region's queue. A request that is
not an envelope at all is refused whole (400).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import msgspec

from central.accounts import Principal
from central.alerts.model import Change
from central.national.publish import ListPublisher, Published
from central.national.store import AlertPage, NationalAlertStore, RegionStatus
from shared.errors import Forbidden, InvalidRequest

log = logging.getLogger(__name__)

MAX_CHANGES: Final = 1000
"""Changes one forwarding request may hold."""


class Envelope(msgspec.Struct, frozen=True):
    """A forwarding request's body; changes are checked one by one."""

    region: str
    changes: list[msgspec.Raw]


class Refused(msgspec.Struct, frozen=True):
    """A change of a request that was not stored, and why."""

    index: int
    reason: str


class ReceiveResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a forwarding request did.

    Attributes:
        region: The region.
        received: Changes in the request.
        stored: Changes stored (new alerts or newer versions).
        duplicates: Changes already stored (a resend) or older than the stored one.
        refused: Malformed changes, by index in the request.
    """

    region: str
    received: int
    stored: int
    duplicates: int
    refused: list[Refused]


class ListStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A published list as last built (empty etag: not asked for since start)."""

    name: str
    entries: int
    etag: str
    built_at: float | None


class HubStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The hub's published lists and what it knows of each region."""

    lists: list[ListStatus]
    regions: list[RegionStatus]


@dataclass
class HubStats:
    """Counters since start (the metrics read them)."""

    requests: int = 0
    changes: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: int = 0


_CHANGE: Final = msgspec.json.Decoder(Change)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)


class NationalHub:
    """Publishes signed lists and keeps the regions' forwarded alerts.

    Args:
        publisher: Builds and signs the published lists.
        store: The forwarded alerts.
        clock: UNIX time source.
    """

    def __init__(
        self,
        publisher: ListPublisher,
        store: NationalAlertStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self._store = store
        self._clock = clock
        self.stats = HubStats()

    def published(self, name: str) -> Published:
        """The signed export of a published list (see ``ListPublisher.current``)."""
        return self._publisher.current(name)

    def receive(self, principal: Principal, region_header: str, body: bytes) -> ReceiveResult:
        """Store a region's forwarded changes (repeats are counted, not stored again).

        Raises:
            InvalidRequest: The body is not an envelope, or holds too many changes.
            Forbidden: The region is not the caller's own.
        """
        try:
            envelope = _ENVELOPE.decode(body)
        except msgspec.DecodeError as err:
            raise InvalidRequest(
                f'expected {{"region": ..., "changes": [...]}}, got a body that is not: {err}'
            ) from err
        region = envelope.region
        if region != principal.user or (region_header and region_header != region):
            raise Forbidden(
                f"a token of hub user {principal.user!r} forwards for region "
                f"{principal.user!r} only, got region {region!r}"
            )
        if len(envelope.changes) > MAX_CHANGES:
            raise InvalidRequest(
                f"expected at most {MAX_CHANGES} changes per request, got {len(envelope.changes)}"
            )
        changes, refused = _split(envelope.changes)
        receipt = self._store.receive(region, changes)
        stats = self.stats
        stats.requests += 1
        stats.changes += len(envelope.changes)
        stats.stored += receipt.stored
        stats.duplicates += receipt.duplicates
        stats.refused += len(refused)
        if refused:
            log.warning("region %s: %d changes refused, first: %s",
                        region, len(refused), refused[0].reason)  # fmt: skip
        return ReceiveResult(
            region=region,
            received=len(envelope.changes),
            stored=receipt.stored,
            duplicates=receipt.duplicates,
            refused=refused,
        )

    def purge(self, days: float) -> int:
        """Delete forwarded alerts no region changed for ``days``; how many."""
        gone = self._store.purge(self._clock() - days * 86_400)
        if gone:
            log.info("national hub: %d forwarded alerts older than %s days deleted", gone, days)
        return gone

    def alerts(self, after: int, limit: int, region: str | None, state: str | None) -> AlertPage:
        """A page of forwarded alerts (see ``NationalAlertStore.page``)."""
        return self._store.page(after, limit, region, state)

    def status(self) -> HubStatus:
        """Published lists and regions."""
        lists = []
        for name in self._publisher.names:
            built = self._publisher.cached(name)
            lists.append(
                ListStatus(
                    name=name,
                    entries=built.entries if built else 0,
                    etag=built.etag if built else "",
                    built_at=built.built_at if built else None,
                )
            )
        return HubStatus(lists=lists, regions=self._store.regions())


def _split(raw: list[msgspec.Raw]) -> tuple[list[Change], list[Refused]]:
    changes: list[Change] = []
    refused: list[Refused] = []
    for index, item in enumerate(raw):
        try:
            change = _CHANGE.decode(item)
        except msgspec.DecodeError as err:
            refused.append(Refused(index, f"expected an alert change, got: {err}"))
            continue
        if change.alert.kind != "watchlist" or not change.alert.details.get("list_name"):
            refused.append(
                Refused(index, f"expected a watchlist alert with a list, got {change.alert.kind!r}")
            )
            continue
        if change.seq != change.alert.seq:
            refused.append(
                Refused(index, f"expected seq {change.alert.seq} (the alert's), got {change.seq}")
            )
            continue
        changes.append(change)
    return changes, refused
