"""CPU cost of one routing decision: `policies.router.decide` over 20 deployments, per strategy.

    .venv/bin/python -m benchmarks.routing_bench [--iterations 20000] [--repeat 5]

Times each run with `time.perf_counter_ns` (wall) and `time.process_time_ns` (this process's CPU, which
other load on a shared machine disturbs less) and prints µs per call: the best run (the figure least
disturbed by other work) and the median wall time for a sense of the noise.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from policies.capabilities import Capabilities, Requirements
from policies.circuit_breaker import BreakerRegistry
from policies.latency_tracker import LatencyTracker
from policies.observations import DeploymentView, LoadView, RequestView
from policies.pricing import Price, PriceSchedule
from policies.router import STRATEGIES, RouterState, StrategyConfig, decide
from policies.strategies.slo_cost import SloCostConfig

NOW = 1_700_000_000.0
COUNT = 20


CAPABILITIES = Capabilities(
    chat=True, embeddings=False, tools=True, streaming=True, context_window=128_000, max_output=16_384
)


def price(i: int) -> PriceSchedule:
    return PriceSchedule((Price("bench", input=50_000 * (1 + i % 5), output=100_000 * (1 + i % 4)),))


def deployments() -> tuple[DeploymentView, ...]:
    views = []
    for i in range(COUNT):
        local = i % 4 == 0
        views.append(
            DeploymentView(
                name=f"provider-{i}/model-{i}",
                position=i,
                provider=f"provider-{i}",
                provider_kind="vllm" if local else "openai",
                local=local,
                weight=float(1 + i % 3),
                capabilities=Capabilities(
                    chat=True,
                    embeddings=False,
                    tools=True,
                    streaming=True,
                    context_window=128_000,
                    max_output=16_384,
                ),
                prices=None
                if i % 7 == 3
                else PriceSchedule(
                    (Price("bench", input=50_000 * (1 + i % 5), output=100_000 * (1 + i % 4)),)
                ),
            )
        )
    return tuple(views)


def observations(
    views: tuple[DeploymentView, ...],
) -> tuple[dict[str, LoadView], LatencyTracker, BreakerRegistry]:
    rng = random.Random(7)
    loads = {
        d.name: LoadView(
            in_flight=rng.randrange(10),
            queue_waiting=float(rng.randrange(12)) if d.local else None,
            running=float(rng.randrange(30)) if d.local else None,
            kv_cache_usage=rng.random() if d.local else None,
            healthy=i != 5,
        )
        for i, d in enumerate(views)
    }
    tracker = LatencyTracker()
    for d in views[:-2]:  # two deployments stay unmeasured
        for k in range(30):
            tracker.observe(
                d.name,
                now=NOW - 60 + k,
                latency_s=0.5 + rng.random(),
                ttft_s=0.1 + rng.random() / 4,
                ok=k % 9 != 0,
            )
    breakers = BreakerRegistry()
    for _ in range(5):
        breakers.record(views[2].name, NOW - 1, ok=False)  # one deployment's circuit is open
    breakers.cool_down(views[9].name, NOW - 1, 30.0)  # one answered 429 with Retry-After
    for d in views:
        breakers.record(d.name, NOW - 1, ok=True)
    return loads, tracker, breakers


def bench(strategy: str, iterations: int, repeat: int) -> tuple[float, float, float]:
    views = deployments()
    loads, tracker, breakers = observations(views)
    config: StrategyConfig | None = SloCostConfig(slo_s=0.3) if strategy == "slo_cost" else None
    state = RouterState()
    rng = random.Random(1)
    request = RequestView(
        requirements=Requirements(chat=True, streaming=True, tools=True, max_output=1024, prompt_bytes=4_000),
        max_output_tokens=1024,
        prompt_tokens=900,
        tenant="acme",
        deny=frozenset({"provider-17"}),
    )
    walls, cpus = [], []
    for _ in range(repeat):
        latencies = tracker.views(NOW)
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(iterations):
            decide(
                request,
                views,
                strategy=strategy,
                strategy_config=config,
                loads=loads,
                latencies=latencies,
                breakers=breakers,
                state=state,
                rng=rng,
                now=NOW,
                max_attempts=3,
            )
        cpus.append((time.process_time_ns() - cpu) / iterations / 1000)
        walls.append((time.perf_counter_ns() - wall) / iterations / 1000)
    return min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"decide() over {COUNT} deployments, {args.iterations} calls x {args.repeat} runs, µs per call")
    print(f"{'strategy':<16}{'wall best':>11}{'wall median':>13}{'CPU best':>10}")
    for strategy in sorted(STRATEGIES):
        best, median, cpu = bench(strategy, args.iterations, args.repeat)
        print(f"{strategy:<16}{best:>11.2f}{median:>13.2f}{cpu:>10.2f}")


if __name__ == "__main__":
    main()
