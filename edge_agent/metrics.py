"""The edge agent's Prometheus metrics, read from its own counters at scrape time.

Nothing here runs on the hot path: the capture threads, the pipeline, the spool and the
publisher keep counting as they always did (``SourceStatus``, ``StageTimes``,
``SpoolStats``, ``PublisherStats``, ``SubmitStats``) and :class:`EdgeCollector` turns a
snapshot of them into metric families when Prometheus scrapes. Labels stay low in
cardinality: ``camera`` (the configured camera ids) and ``stage`` (the pipeline stages).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.metrics import gauge, histogram_family

if TYPE_CHECKING:
    from edge_agent.app import EdgeAgent
    from edge_agent.capture import CameraHub
    from edge_agent.pipeline import Pipeline

_CAMERA_COUNTERS = (
    ("frames_decoded", "Frames decoded from the camera."),
    ("frames_taken", "Frames the pipeline took."),
    ("frames_dropped", "Frames replaced before the pipeline took them (pipeline too slow)."),
    ("frames_skipped", "Frames left out on purpose by frame_step or max_fps."),
    ("reconnects", "Failed opens or lost connections, each followed by a retry."),
)


class EdgeCollector(Collector):
    """Cameras, pipeline stages, plate reads, spool and central link of one agent."""

    def __init__(self, hub: CameraHub, pipeline: Pipeline, agent: EdgeAgent) -> None:
        self._hub, self._pipeline, self._agent = hub, pipeline, agent

    def collect(self) -> Iterator[Metric]:
        """Metric families from a snapshot of the agent's counters."""
        yield from self._cameras()
        yield from self._pipeline_metrics()
        yield from self._spool()
        yield from self._link()

    def _cameras(self) -> Iterator[Metric]:
        statuses = self._hub.status()
        up = GaugeMetricFamily(
            "varta_edge_camera_up", "1 while the camera delivers frames.", labels=["camera"]
        )
        fps_in = GaugeMetricFamily(
            "varta_edge_camera_fps_in", "Frames decoded per second (last 5 s).", labels=["camera"]
        )
        fps_out = GaugeMetricFamily(
            "varta_edge_camera_fps_out",
            "Frames the pipeline took per second (last 5 s).",
            labels=["camera"],
        )
        counters = {
            name: CounterMetricFamily(f"varta_edge_camera_{name}", doc, labels=["camera"])
            for name, doc in _CAMERA_COUNTERS
        }
        for s in statuses:
            up.add_metric([s.camera_id], 1.0 if s.online else 0.0)
            fps_in.add_metric([s.camera_id], s.fps_in)
            fps_out.add_metric([s.camera_id], s.fps_out)
            for name, family in counters.items():
                family.add_metric([s.camera_id], getattr(s, name))
        yield from (up, fps_in, fps_out, *counters.values())

    def _pipeline_metrics(self) -> Iterator[Metric]:
        times = self._pipeline.times
        yield CounterMetricFamily(
            "varta_edge_frames_processed", "Frames through the pipeline.", value=times.frames
        )
        yield CounterMetricFamily(
            "varta_edge_frames_detected",
            "Frames run through vehicle detection.",
            value=times.detected,
        )
        yield CounterMetricFamily(
            "varta_edge_sightings", "Sightings the pipeline emitted.", value=times.sightings
        )
        reads = CounterMetricFamily(
            "varta_edge_plate_reads",
            "Plate reads (OCR) attempted on vehicle tracks, by result.",
            labels=["result"],
        )
        reads.add_metric(["plate"], times.plates_read)
        reads.add_metric(["none"], times.plate_reads - times.plates_read)
        yield reads
        yield histogram_family(
            "varta_edge_stage_duration",
            "Seconds per call of a pipeline stage (one batch of frames, one per camera).",
            ["stage"],
            [([name], hist) for name, hist in sorted(dict(times.seconds).items())],
        )

    def _spool(self) -> Iterator[Metric]:
        s = self._agent.spool.stats()
        submits = self._agent.submits
        yield gauge("varta_edge_spool_depth", "Sightings in the spool not yet acked.", s.depth)
        yield gauge("varta_edge_spool_bytes", "Bytes of spool segments on disk.", s.bytes)
        yield CounterMetricFamily(
            "varta_edge_spool_evictions",
            "Unsent sightings evicted because the spool reached max_bytes.",
            value=s.evictions,
        )
        yield CounterMetricFamily(
            "varta_edge_spool_write_errors",
            "Spool appends the disk refused (held in memory and retried).",
            value=s.write_errors,
        )
        yield gauge(
            "varta_edge_spool_held",
            "Sightings held in memory while the disk refuses.",
            submits.held,
        )
        yield CounterMetricFamily(
            "varta_edge_spool_held_dropped",
            "Held sightings dropped because memory was full too.",
            value=submits.dropped,
        )

    def _link(self) -> Iterator[Metric]:
        p = self._agent.publisher.stats
        yield gauge("varta_edge_central_connected", "1 while connected to central.", p.connected)
        yield CounterMetricFamily(
            "varta_edge_batches_sent", "Batches sent to central.", value=p.batches_sent
        )
        yield CounterMetricFamily(
            "varta_edge_records_acked", "Sightings central acknowledged.", value=p.records_acked
        )
        yield CounterMetricFamily(
            "varta_edge_dead_letters", "Sightings central refused for good.", value=p.dead_letters
        )
        yield CounterMetricFamily(
            "varta_edge_reconnects", "Reconnections to central.", value=p.reconnects
        )
        crops = CounterMetricFamily(
            "varta_edge_face_crop_requests",
            "Central's face crop requests by answer: served (the JPEG), expired, or dropped "
            "(the socket could not take the reply).",
            labels=["answer"],
        )
        crops.add_metric(["served"], p.crops_served)
        crops.add_metric(["expired"], p.crops_expired)
        crops.add_metric(["dropped"], p.crop_replies_dropped)
        yield crops
