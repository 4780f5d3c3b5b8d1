"""Prometheus figures of the local ONNX models, read from their batchers at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from local_runtime.onnx_provider import OnnxProvider


class OnnxCollector(Collector):
    def __init__(self, providers: Callable[[], Iterable[Any]]) -> None:
        self._providers = providers

    def collect(self) -> Iterator[Any]:
        batches = CounterMetricFamily("switchyard_onnx_batches", "Batches run per local model.", labels=["model"])
        requests = CounterMetricFamily(
            "switchyard_onnx_batched_requests",
            "Requests run per local model (/ batches: the mean batch size).",
            labels=["model"],
        )
        queued_seconds = CounterMetricFamily(
            "switchyard_onnx_queue_seconds",
            "Time requests waited in the batcher's queue (/ requests: the mean queue time).",
            labels=["model"],
        )
        rejected = CounterMetricFamily(
            "switchyard_onnx_rejected_requests", "Requests refused because the queue was full.", labels=["model"]
        )
        depth = GaugeMetricFamily(
            "switchyard_onnx_queue_depth", "Requests waiting in the batcher now.", labels=["model"]
        )
        largest = GaugeMetricFamily(
            "switchyard_onnx_largest_batch", "Most requests run in one batch so far.", labels=["model"]
        )
        for provider in self._providers():
            if not isinstance(provider, OnnxProvider):
                continue
            for status in provider.manager.status():
                stats = status.stats
                if stats is None:
                    continue
                batches.add_metric([status.name], stats.batches)
                requests.add_metric([status.name], stats.requests)
                queued_seconds.add_metric([status.name], stats.queue_seconds)
                rejected.add_metric([status.name], stats.rejected)
                depth.add_metric([status.name], stats.queued)
                largest.add_metric([status.name], stats.largest_batch)
        yield from (batches, requests, queued_seconds, rejected, depth, largest)
