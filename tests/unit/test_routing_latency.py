from __future__ import annotations

import math

import pytest

from policies.latency_tracker import LatencyConfig, LatencyTracker
from policies.observations import NO_LATENCY


def test_unknown_deployment_has_no_latency() -> None:
    tracker = LatencyTracker()
    assert tracker.view("a", 0.0) is NO_LATENCY
    assert tracker.views(0.0).get("a") is None
    assert "a" not in tracker.views(0.0)


def test_first_sample_is_the_average_and_the_p95() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=10.0, latency_s=1.5, ttft_s=0.2, ok=True)
    view = tracker.view("a", 10.0)
    assert (view.ewma_latency_s, view.ewma_ttft_s) == (1.5, 0.2)
    assert (view.p95_latency_s, view.p95_ttft_s) == (1.5, 0.2)
    assert view.samples == 1
    assert view.error_rate == 0.0


def test_half_life_halves_an_old_samples_weight() -> None:
    tracker = LatencyTracker(LatencyConfig(half_life_s=10.0))
    tracker.observe("a", now=0.0, latency_s=1.0)
    tracker.observe("a", now=10.0, latency_s=4.0)
    # The first sample weighs 0.5 against the second's 1: (0.5 * 1 + 4) / 1.5 = 3.
    assert tracker.view("a", 10.0).ewma_latency_s == pytest.approx(3.0)


def test_samples_at_the_same_instant_weigh_the_same() -> None:
    tracker = LatencyTracker()
    for latency in (1.0, 2.0, 3.0):
        tracker.observe("a", now=5.0, latency_s=latency)
    assert tracker.view("a", 5.0).ewma_latency_s == pytest.approx(2.0)


def test_long_silence_leaves_the_next_sample_in_charge() -> None:
    tracker = LatencyTracker(LatencyConfig(half_life_s=1.0))
    tracker.observe("a", now=0.0, latency_s=100.0)
    tracker.observe("a", now=10_000.0, latency_s=1.0)
    assert tracker.view("a", 10_000.0).ewma_latency_s == pytest.approx(1.0)


def test_failures_feed_the_error_rate_not_the_latency() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=2.0, ok=True)
    tracker.observe("a", now=0.0, latency_s=0.01, ok=False)
    view = tracker.view("a", 0.0)
    assert view.ewma_latency_s == 2.0
    assert view.samples == 1
    assert view.error_rate == pytest.approx(0.5)


def test_only_failures_means_no_latency_but_an_error_rate() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=0.1, ok=False)
    view = tracker.view("a", 0.0)
    assert view.ewma_latency_s is None and view.p95_latency_s is None and view.samples == 0
    assert view.error_rate == 1.0


def test_p95_is_the_nearest_rank() -> None:
    tracker = LatencyTracker(LatencyConfig(window_size=100))
    for i in range(1, 101):
        tracker.observe("a", now=float(i), latency_s=float(i), ttft_s=i / 100)
    view = tracker.view("a", 100.0)
    assert view.p95_latency_s == 95.0
    assert view.p95_ttft_s == pytest.approx(0.95)
    assert view.samples == 100


def test_window_keeps_only_the_latest_samples() -> None:
    tracker = LatencyTracker(LatencyConfig(window_size=3))
    for latency in (10.0, 10.0, 1.0, 1.0, 1.0):
        tracker.observe("a", now=0.0, latency_s=latency)
    view = tracker.view("a", 0.0)
    assert view.samples == 3 and view.p95_latency_s == 1.0


def test_samples_leave_the_window_with_age() -> None:
    tracker = LatencyTracker(LatencyConfig(window_s=60.0))
    tracker.observe("a", now=0.0, latency_s=5.0)
    tracker.observe("a", now=30.0, latency_s=1.0)
    assert tracker.view("a", 59.0).samples == 2
    later = tracker.view("a", 61.0)  # the cached view went stale when the first sample aged out
    assert later.samples == 1 and later.p95_latency_s == 1.0
    gone = tracker.view("a", 91.0)
    assert gone.samples == 0 and gone.p95_latency_s is None
    assert gone.ewma_latency_s is not None  # the average is long memory; only the p95 is windowed


def test_ttft_missing_for_non_streamed_requests() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=1.0, ttft_s=None)
    view = tracker.view("a", 0.0)
    assert view.ewma_ttft_s is None and view.p95_ttft_s is None and view.p95_latency_s == 1.0


def test_nonsense_latencies_are_ignored() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=math.nan, ttft_s=0.1)
    tracker.observe("a", now=0.0, latency_s=-1.0)
    tracker.observe("a", now=0.0, latency_s=1.0, ttft_s=math.inf)
    view = tracker.view("a", 0.0)
    assert view.ewma_latency_s == 1.0 and view.samples == 1 and view.ewma_ttft_s is None


def test_view_is_cached_until_the_next_observation() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=1.0)
    first = tracker.view("a", 1.0)
    assert tracker.view("a", 2.0) is first
    tracker.observe("a", now=3.0, latency_s=2.0)
    assert tracker.view("a", 3.0) is not first


def test_views_mapping_and_forget() -> None:
    tracker = LatencyTracker()
    tracker.observe("a", now=0.0, latency_s=1.0)
    tracker.observe("b", now=0.0, latency_s=2.0)
    views = tracker.views(0.0)
    assert len(views) == 2 and set(views) == {"a", "b"}
    assert views["b"].ewma_latency_s == 2.0
    with pytest.raises(KeyError):
        views["c"]
    tracker.forget("a")
    assert list(tracker.names()) == ["b"]


def test_out_of_order_times_do_not_decay_backwards() -> None:
    tracker = LatencyTracker(LatencyConfig(half_life_s=10.0))
    tracker.observe("a", now=10.0, latency_s=1.0)
    tracker.observe("a", now=5.0, latency_s=3.0)
    assert tracker.view("a", 10.0).ewma_latency_s == pytest.approx(2.0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        LatencyConfig(half_life_s=0)
    with pytest.raises(ValueError):
        LatencyConfig(window_size=0)


def test_averages_match_the_decay_rule_over_random_samples() -> None:
    """Each sample weighs 2^(-age / half-life) at the latest time seen; a sample from before that
    time (a clock that went back) counts as taken at it. Gaps long enough to rescale the sums included."""
    import random

    rng = random.Random(11)
    half_life = 2.0
    tracker = LatencyTracker(LatencyConfig(half_life_s=half_life, window_size=4096, window_s=1e9))
    samples: list[tuple[float, float, float | None, bool]] = []
    now, latest = 0.0, -math.inf
    for _ in range(2_000):
        now += rng.choice([0.0, 0.01, 0.3, 1.0, 5.0, 500.0, 3_000.0, -0.5])
        latest = max(latest, now)
        latency, ttft, ok = rng.uniform(0.01, 3.0), rng.choice([None, rng.uniform(0.001, 0.5)]), rng.random() < 0.9
        tracker.observe("a", now=now, latency_s=latency, ttft_s=ttft, ok=ok)
        samples.append((latest, latency, ttft, ok))
        view = tracker.view("a", latest)

        def weight(at: float, latest: float = latest) -> float:
            return 2.0 ** (-(latest - at) / half_life)

        total = sum(weight(t) for t, _, _, _ in samples)
        errors = sum(weight(t) for t, _, _, ok_ in samples if not ok_)
        good = [(weight(t), lat, tt) for t, lat, tt, ok_ in samples if ok_]
        assert view.error_rate == pytest.approx(errors / total, rel=1e-9, abs=1e-12)
        if sum(w for w, _, _ in good) > 1e-300:
            expected = sum(w * lat for w, lat, _ in good) / sum(w for w, _, _ in good)
            assert view.ewma_latency_s == pytest.approx(expected, rel=1e-9)
        timed = [(w, tt) for w, _, tt in good if tt is not None]
        if timed and sum(w for w, _ in timed) > 1e-300:
            expected_ttft = sum(w * tt for w, tt in timed) / sum(w for w, _ in timed)
            assert view.ewma_ttft_s == pytest.approx(expected_ttft, rel=1e-9)
        if len(samples) > 40:
            samples = [s for s in samples if latest - s[0] < 200 * half_life]  # weights below 2^-200 do not count
