"""What every strategy returns, and the latency figure strategies compare."""

from __future__ import annotations

from typing import Final, Literal

from policies.frozen_record import FrozenRecord
from policies.observations import LatencyView

LatencyMetric = Literal["auto", "ttft", "total"]
"""`ttft`: time to first token; `total`: whole-response latency; `auto`: ttft for streamed requests
(the client sees the first token), total otherwise."""

LATENCY_METRICS: frozenset[str] = frozenset({"auto", "ttft", "total"})


class Ranking(FrozenRecord):
    """Deployment names best first, with one score and one short reason per name (for `explain`).

    A score's meaning is the strategy's (a cost, a latency, a queue length); None where it has none.
    Built per request: see `policies.frozen_record`.
    """

    _fields = ("order", "scores", "why")
    __slots__ = _fields
    order: Final[tuple[str, ...]]
    scores: Final[tuple[float | None, ...]]
    why: Final[tuple[str, ...]]

    def __init__(self, *, order: tuple[str, ...], scores: tuple[float | None, ...], why: tuple[str, ...]) -> None:
        if not len(order) == len(scores) == len(why):
            raise ValueError("a ranking needs one score and one reason per deployment")
        self.order = order
        self.scores = scores
        self.why = why


def uses_ttft(metric: LatencyMetric, stream: bool) -> bool:
    return metric == "ttft" or (metric == "auto" and stream)


def ewma_of(view: LatencyView, ttft: bool) -> float | None:
    """The average latency to compare. A deployment never measured on first tokens (it served only
    whole responses) falls back to its total latency, an upper bound of its time to first token."""
    if ttft and view.ewma_ttft_s is not None:
        return view.ewma_ttft_s
    return view.ewma_latency_s


def p95_of(view: LatencyView, ttft: bool) -> float | None:
    """The 95th percentile to compare, with the same fallback as `ewma_of`."""
    if ttft and view.p95_ttft_s is not None:
        return view.p95_ttft_s
    return view.p95_latency_s
