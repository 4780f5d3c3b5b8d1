"""`strategy: spillover` — own GPUs first; hosted deployments take what they cannot.

A local deployment spills over when any reported figure reaches its `spill_when` threshold, and
takes traffic first again only once every figure is below `resume_when` (by default
`resume_fraction` times the spill thresholds). Between the two it keeps its mode: load that oscillates
inside that band never makes routing flap between local and hosted. The mode is per local
deployment, kept in a `SpilloverState` per logical model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from policies.observations import IDLE, DeploymentView, LoadView, RequestView
from policies.strategies.least_load import load_score
from policies.strategies.ranking import Ranking

_LOCAL = "local, under its spill thresholds (score: work on it)"
_HOSTED = "hosted: takes what local capacity cannot"
_SPILLED = "local but spilled over until its load falls below resume_when"


@dataclass(frozen=True, slots=True)
class SpillThresholds:
    """Load figures of a local deployment; None: this figure is not a trigger. A figure the server
    does not report never triggers."""

    queue_waiting: float | None = None
    kv_cache_usage: float | None = None
    in_flight: float | None = None
    """For local runtimes that report no queue (ONNX Runtime): this gateway's requests in flight."""

    def scaled(self, fraction: float) -> SpillThresholds:
        return SpillThresholds(
            queue_waiting=None if self.queue_waiting is None else self.queue_waiting * fraction,
            kv_cache_usage=None if self.kv_cache_usage is None else self.kv_cache_usage * fraction,
            in_flight=None if self.in_flight is None else self.in_flight * fraction,
        )


@dataclass(frozen=True, slots=True)
class SpilloverConfig:
    spill_when: SpillThresholds = SpillThresholds(queue_waiting=8, kv_cache_usage=0.9)
    resume_when: SpillThresholds | None = None
    """None: `resume_fraction` times `spill_when`."""
    resume_fraction: float = 0.5
    resume: SpillThresholds = field(init=False, repr=False, compare=False)
    """The resume thresholds in force (computed)."""

    def __post_init__(self) -> None:
        if not 0 < self.resume_fraction <= 1:
            raise ValueError(f"resume_fraction must be in (0, 1], not {self.resume_fraction!r}")
        resume = self.resume_when or self.spill_when.scaled(self.resume_fraction)
        for name in ("queue_waiting", "kv_cache_usage", "in_flight"):
            spill, back = getattr(self.spill_when, name), getattr(resume, name)
            if spill is None and back is not None:
                raise ValueError(f"resume_when.{name} is set but spill_when.{name} is not")
            if spill is not None and back is not None and back > spill:
                raise ValueError(f"resume_when.{name} ({back}) must not be above spill_when.{name} ({spill})")
        object.__setattr__(self, "resume", resume)


class SpilloverState:
    """Which local deployments of one logical model are spilled over; one per model per config."""

    __slots__ = ("spilled",)

    def __init__(self) -> None:
        self.spilled: set[str] = set()

    def copy(self) -> SpilloverState:
        """An independent copy, so a dry run (`explain`) does not change the modes."""
        twin = SpilloverState()
        twin.spilled = set(self.spilled)
        return twin


def reaches(load: LoadView, limits: SpillThresholds) -> bool:
    """Some reported figure is at or above its threshold."""
    waiting, kv = load.queue_waiting, load.kv_cache_usage
    return (
        (limits.queue_waiting is not None and waiting is not None and waiting >= limits.queue_waiting)
        or (limits.kv_cache_usage is not None and kv is not None and kv >= limits.kv_cache_usage)
        or (limits.in_flight is not None and load.in_flight >= limits.in_flight)
    )


def below(load: LoadView, limits: SpillThresholds) -> bool:
    """Every reported figure with a threshold is strictly below it."""
    return not reaches(load, limits)


def rank(
    request: RequestView,
    eligible: Sequence[DeploymentView],
    *,
    loads: Mapping[str, LoadView],
    config: SpilloverConfig,
    state: SpilloverState,
) -> Ranking:
    """Local deployments in local mode (least work first, then config position), then hosted ones
    (config position), then spilled-over local ones (config position) as a last resort. Updates each
    local deployment's mode in `state` first. Score: the work on a local deployment (see
    `least_load.load_score`), None for hosted ones."""
    spilled = state.spilled
    spill_when = config.spill_when
    resume = config.resume
    local: list[tuple[float, int, int, str]] = []
    hosted: list[tuple[int, int, str]] = []
    over: list[tuple[int, int, str, float]] = []
    for index, d in enumerate(eligible):
        if not d.local:
            hosted.append((d.position, index, d.name))
            continue
        load = loads.get(d.name, IDLE)
        if d.name in spilled:
            if below(load, resume):
                spilled.discard(d.name)
        elif reaches(load, spill_when):
            spilled.add(d.name)
        if d.name in spilled:
            over.append((d.position, index, d.name, load_score(load)))
        else:
            local.append((load_score(load), d.position, index, d.name))
    local.sort()
    hosted.sort()
    over.sort()
    order = [x[3] for x in local]
    order.extend(x[2] for x in hosted)
    order.extend(x[2] for x in over)
    scores: list[float | None] = [x[0] for x in local]
    scores.extend([None] * len(hosted))
    scores.extend(x[3] for x in over)
    why = [_LOCAL] * len(local)
    why.extend([_HOSTED] * len(hosted))
    why.extend([_SPILLED] * len(over))
    return Ranking(order=tuple(order), scores=tuple(scores), why=tuple(why))
