"""prometheus-client's Counter and Histogram without their per-update lock and checks, for one event loop.

prometheus-client guards every value with a `threading.Lock` and checks on every `inc()` and `observe()`
that the metric is a labelled child. A request updates about 16 values (requests, durations, tokens,
attempts, cost, the GenAI histograms): ~45 Python bytecodes for an `inc()` and ~60 for an `observe()`,
7% of what the gateway runs per non-streaming request (`python -m benchmarks.opcount`). All of the
gateway's counters and histograms are updated on the event loop's thread only, so the lock protects
nothing there.

`LoopCounter` and `LoopHistogram` keep prometheus-client's parents (labels, registry, collect, the
exposition) and replace only what a child holds: plain floats, updated without a lock. A histogram
finds its bucket by bisection. Reading them from another thread (a scrape) is safe under the GIL; an
update from another thread could be lost, so they are for loop-thread metrics only.

Several workers share their figures through prometheus-client's multiprocess files, whose values are
not plain floats: `Metrics` uses the stock classes then.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client import metrics as _stock
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class LoopCounter(Counter):
    def _metric_init(self) -> None:
        self._total = 0.0
        self._created = time.time()

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._total += amount

    def _child_samples(self) -> Iterable[Sample]:
        total = Sample("_total", {}, self._total, None, None)
        if _stock._use_created:  # what disable_created_metrics() turns off
            return (total, Sample("_created", {}, self._created, None, None))
        return (total,)


class LoopHistogram(Histogram):
    def _metric_init(self) -> None:
        self._counts = [0] * len(self._upper_bounds)
        self._total = 0.0
        self._created = time.time()

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        # The first bound >= amount, as prometheus-client's `amount <= bound` scan; the last bound is +Inf.
        self._counts[bisect_left(self._upper_bounds, amount)] += 1
        self._total += amount

    def _child_samples(self) -> Iterable[Sample]:
        samples = []
        seen = 0
        for bound, count in zip(self._upper_bounds, self._counts, strict=True):
            seen += count
            samples.append(Sample("_bucket", {"le": floatToGoString(bound)}, float(seen), None, None))
        samples.append(Sample("_count", {}, float(seen), None, None))
        if self._upper_bounds[0] >= 0:
            samples.append(Sample("_sum", {}, self._total, None, None))
        if _stock._use_created:  # what disable_created_metrics() turns off
            samples.append(Sample("_created", {}, self._created, None, None))
        return tuple(samples)
