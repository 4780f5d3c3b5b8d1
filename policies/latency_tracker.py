"""Recent latency per deployment: time-decayed averages, a sliding-window p95, and the error rate.

Single-threaded by design (the gateway's event loop calls it); every time is the caller's `now`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from policies.observations import NO_LATENCY, LatencyView


@dataclass(frozen=True, slots=True)
class LatencyConfig:
    half_life_s: float = 30.0
    """A sample's weight in the averages halves every this many seconds."""
    window_size: int = 128
    """The p95 is taken over at most this many of the latest successful samples…"""
    window_s: float = 300.0
    """…no older than this: a deployment that served nothing for this long has no p95 (`samples` 0)."""

    def __post_init__(self) -> None:
        if not self.half_life_s > 0 or not self.window_s > 0 or self.window_size < 1:
            raise ValueError("half_life_s and window_s must be positive and window_size at least 1")


class _Series:
    """One deployment's statistics. The averages are decayed sums over decayed weights, so samples
    that arrive at the same instant weigh the same, and the first sample is the average exactly.

    Rather than decaying every sum at each sample, a sample adds weight exp(λ (t - epoch)): the later,
    the heavier, in the same proportions, and the averages (ratios) are the same. The sums are brought
    back to the latest sample's scale before that weight could overflow."""

    __slots__ = (
        "cached",
        "epoch",
        "errors",
        "expires_at",
        "last_at",
        "latency_sum",
        "latency_weight",
        "recent",
        "total_weight",
        "ttft_sum",
        "ttft_weight",
    )

    def __init__(self, window_size: int) -> None:
        self.last_at: float | None = None
        self.epoch = 0.0
        """The time a sample weighs 1 at; `last_at`'s samples weigh exp(λ (last_at - epoch))."""
        self.latency_sum = self.latency_weight = 0.0
        self.ttft_sum = self.ttft_weight = 0.0
        self.errors = self.total_weight = 0.0
        self.recent: deque[tuple[float, float, float | None]] = deque(maxlen=window_size)
        """(when, latency, ttft) of the latest successful samples, oldest first."""
        self.cached: LatencyView | None = None
        self.expires_at = math.inf
        """When the oldest sample in `recent` leaves the window (the cached view goes stale)."""


_RESCALE_AFTER = 300.0
"""A sample's weight reaches e^300 (~1e130: 7 hours at a 30 s half-life) before the sums are rescaled."""


class LatencyTracker:
    """Per-deployment latency and error statistics, fed by `observe` after every attempt.

    Only successful attempts feed the latency figures: a failure that returns fast must not make a
    deployment look fast. Every attempt, failed or not, feeds the error rate.
    """

    __slots__ = ("_config", "_decay_per_s", "_series")

    def __init__(self, config: LatencyConfig | None = None) -> None:
        self._config = config or LatencyConfig()
        self._decay_per_s = math.log(2) / self._config.half_life_s
        self._series: dict[str, _Series] = {}

    def observe(self, name: str, *, now: float, latency_s: float, ttft_s: float | None = None, ok: bool = True) -> None:
        """Record one finished attempt on deployment `name`: its total latency, its time to first
        token (None when not streamed or unknown), and whether it succeeded."""
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _Series(self._config.window_size)
            series.epoch = now
        last = series.last_at
        if last is None or now > last:
            series.last_at = last = now
        # A sample from before the latest (a clock that went back) weighs as much as the latest.
        growth = (last - series.epoch) * self._decay_per_s
        if growth > _RESCALE_AFTER:
            self._rescale(series, growth, last)
            growth = 0.0
        weight = math.exp(growth)
        series.total_weight += weight
        if not ok:
            series.errors += weight
        elif math.isfinite(latency_s) and latency_s >= 0:
            series.latency_sum += latency_s * weight
            series.latency_weight += weight
            ttft = ttft_s if ttft_s is not None and math.isfinite(ttft_s) and ttft_s >= 0 else None
            if ttft is not None:
                series.ttft_sum += ttft * weight
                series.ttft_weight += weight
            series.recent.append((now, latency_s, ttft))
        series.cached = None

    @staticmethod
    def _rescale(series: _Series, growth: float, epoch: float) -> None:
        """Re-express the sums with `epoch` as the time a sample weighs 1 at (what is that old vanishes)."""
        keep = math.exp(-growth)
        series.latency_sum *= keep
        series.latency_weight *= keep
        series.ttft_sum *= keep
        series.ttft_weight *= keep
        series.errors *= keep
        series.total_weight *= keep
        series.epoch = epoch

    def view(self, name: str, now: float) -> LatencyView:
        """The statistics of `name` as of `now` (`NO_LATENCY` if it was never observed). Cached until
        the next `observe` or until a sample leaves the window, so calling it per request is cheap."""
        series = self._series.get(name)
        if series is None:
            return NO_LATENCY
        cached = series.cached
        if cached is not None and now < series.expires_at:
            return cached
        return self._refresh(series, now)

    def views(self, now: float) -> Mapping[str, LatencyView]:
        """Every tracked deployment's view as of `now`, computed only for the names looked up."""
        return _ViewsAt(self, now)

    def names(self) -> Iterator[str]:
        return iter(self._series)

    def forget(self, name: str) -> None:
        """Drop a deployment's statistics (it left the config)."""
        self._series.pop(name, None)

    def _refresh(self, series: _Series, now: float) -> LatencyView:
        recent = series.recent
        horizon = now - self._config.window_s
        while recent and recent[0][0] <= horizon:
            recent.popleft()
        series.expires_at = recent[0][0] + self._config.window_s if recent else math.inf
        latencies = sorted(sample[1] for sample in recent)
        ttfts = sorted(sample[2] for sample in recent if sample[2] is not None)
        view = LatencyView(
            ewma_latency_s=series.latency_sum / series.latency_weight if series.latency_weight > 0 else None,
            ewma_ttft_s=series.ttft_sum / series.ttft_weight if series.ttft_weight > 0 else None,
            p95_latency_s=_p95(latencies),
            p95_ttft_s=_p95(ttfts),
            samples=len(recent),
            error_rate=series.errors / series.total_weight if series.total_weight > 0 else None,
        )
        series.cached = view
        return view


def _p95(ordered: list[float]) -> float | None:
    """Nearest-rank 95th percentile of an ascending list (the value at rank ceil(0.95 n))."""
    if not ordered:
        return None
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


class _ViewsAt(Mapping[str, LatencyView]):
    __slots__ = ("_now", "_tracker")

    def __init__(self, tracker: LatencyTracker, now: float) -> None:
        self._tracker = tracker
        self._now = now

    def __getitem__(self, name: str) -> LatencyView:
        if name not in self._tracker._series:
            raise KeyError(name)
        return self._tracker.view(name, self._now)

    def get(self, name: str, default: LatencyView | None = None) -> LatencyView | None:  # type: ignore[override]
        # The hot path of latency-aware strategies: `view` inlined, where Mapping.get would go
        # through __getitem__ and a caught KeyError.
        series = self._tracker._series.get(name)
        if series is None:
            return default
        cached = series.cached
        if cached is not None and self._now < series.expires_at:
            return cached
        return self._tracker._refresh(series, self._now)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tracker._series)

    def __len__(self) -> int:
        return len(self._tracker._series)
