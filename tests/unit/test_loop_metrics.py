"""The lock-free counter and histogram expose exactly what prometheus-client's own classes expose."""

from __future__ import annotations

import random
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.loop_metrics import LoopCounter, LoopHistogram
from gateway.metrics import DURATION_BUCKETS, Metrics

_CREATED = re.compile(rb"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


def _exposition(counter_cls: type, histogram_cls: type, updates: list[tuple[str, str, float]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    counter = counter_cls("c", "a counter", ["a"], registry=registry)
    plain = counter_cls("p", "a counter without labels", registry=registry)
    histogram = histogram_cls("h", "a histogram", ["a"], buckets=DURATION_BUCKETS, registry=registry)
    for kind, label, value in updates:
        if kind == "c":
            counter.labels(label).inc(value)
        elif kind == "p":
            plain.inc(value)
        else:
            histogram.labels(label).observe(value)
    return _CREATED.sub(rb"\1 <created>", generate_latest(registry))


def test_same_exposition_as_prometheus_client_for_random_updates() -> None:
    rng = random.Random(7)
    updates = []
    for _ in range(2_000):
        kind = rng.choice("cph")
        # Values on the bucket bounds too: a bound's own value belongs to its bucket (le).
        value = rng.choice([rng.random() * 400, rng.choice(DURATION_BUCKETS), 0.0, 1e9])
        updates.append((kind, rng.choice(["x", "y", "z"]), value))
    ours = _exposition(LoopCounter, LoopHistogram, updates)
    stock = _exposition(Counter, Histogram, updates)
    assert b'h_bucket{a="x",le="0.01"}' in ours and b"<created>" in ours
    assert ours == stock


def test_counter_refuses_negative_amounts() -> None:
    counter = LoopCounter("n", "negatives", registry=CollectorRegistry())
    with pytest.raises(ValueError):
        counter.inc(-1)


def test_labelled_parent_cannot_be_updated_directly() -> None:
    counter = LoopCounter("q", "needs labels", ["a"], registry=CollectorRegistry())
    with pytest.raises(AttributeError):
        counter.inc()


def test_metrics_use_the_stock_classes_for_multiprocess_files(tmp_path) -> None:
    assert type(Metrics().requests) is LoopCounter
    assert type(Metrics().duration) is LoopHistogram
    shared = Metrics(str(tmp_path))
    assert type(shared.requests) is Counter and type(shared.duration) is Histogram
