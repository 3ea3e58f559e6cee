"""Prometheus plumbing shared by central and the edge agent (prometheus-client).

Both processes expose their metrics on a listener of their own (``metrics.host`` /
``metrics.port``), separate from anything else they serve: it answers only ``/metrics``,
has no authentication, and so belongs on loopback or a management network. Metrics come
from custom collectors that read the process's existing counters at scrape time, so the
hot paths pay nothing for them and nothing is counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from shared.config import MetricsConfig
from shared.errors import ConfigError
from shared.histogram import Histogram

log = logging.getLogger(__name__)


@dataclass
class MetricsServer:
    """A running metrics listener."""

    server: Any
    thread: Any
    port: int

    def close(self) -> None:
        """Stop listening and wait for the serving thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(config: MetricsConfig, *collectors: Collector) -> MetricsServer:
    """Serve ``collectors`` (in a registry of their own) at ``http://host:port/metrics``.

    Raises:
        ConfigError: The address cannot be bound (in use, not on this host).
    """
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    try:
        server, thread = start_http_server(config.port, addr=config.host, registry=registry)
    except OSError as err:
        raise ConfigError(
            f"metrics: cannot listen on {config.host}:{config.port}: {err}; change metrics.port "
            "or metrics.host"
        ) from err
    port = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", config.host, port)
    return MetricsServer(server, thread, port)


def histogram_family(
    name: str,
    documentation: str,
    labels: Sequence[str],
    series: Iterable[tuple[Sequence[str], Histogram]],
) -> HistogramMetricFamily:
    """One histogram family from :class:`~shared.histogram.Histogram` objects."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels), unit="seconds")
    for values, hist in series:
        buckets = hist.cumulative()
        family.add_metric(list(values), buckets, sum_value=hist.sum)
    return family


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """An unlabelled gauge."""
    return GaugeMetricFamily(name, documentation, value=value)
