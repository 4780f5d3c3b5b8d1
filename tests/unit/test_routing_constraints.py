from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.capabilities import Capabilities, Requirements
from policies.circuit_breaker import BreakerRegistry
from policies.constraints import eligible
from policies.observations import DeploymentView, RequestView, estimated_cost, estimated_costs
from policies.pricing import Price, PriceSchedule, estimate_cost_micro_usd


def view(name: str, position: int = 0, **kw: Any) -> DeploymentView:
    kw.setdefault("provider", name.split("/")[0])
    kw.setdefault("provider_kind", "openai")
    return DeploymentView(name=name, position=position, **kw)


def priced(input_micro: int, output_micro: int) -> PriceSchedule:
    return PriceSchedule((Price("test", input=input_micro, output=output_micro),))


def names(found: list[DeploymentView]) -> list[str]:
    return [d.name for d in found]


class Blocked:
    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = reasons

    def exclusions(self, now: float) -> Mapping[str, str]:
        return self.reasons


def test_everything_eligible_by_default_in_the_given_order() -> None:
    views = [view("b/m", 1), view("a/m", 0)]
    allowed, excluded = eligible(RequestView(), views, None, 0.0)
    assert names(allowed) == ["b/m", "a/m"] and excluded == []


def test_tenant_deny_list_matches_name_provider_or_kind_and_wins_over_allow() -> None:
    views = [
        view("openai/gpt", 0, provider="openai"),
        view("gpu-1/llama", 1, provider="gpu-1", provider_kind="vllm", local=True),
        view("anthropic/claude", 2, provider="anthropic", provider_kind="anthropic"),
    ]
    request = RequestView(deny=frozenset({"vllm", "anthropic/claude"}), allow=frozenset({"gpu-1", "openai"}))
    allowed, excluded = eligible(request, views, None, 0.0)
    assert names(allowed) == ["openai/gpt"]
    assert excluded == [
        ("gpu-1/llama", "is on the tenant's deny list"),
        ("anthropic/claude", "is on the tenant's deny list"),
    ]


def test_tenant_allow_list() -> None:
    views = [view("openai/gpt", 0), view("gpu-1/llama", 1, provider_kind="vllm")]
    allowed, excluded = eligible(RequestView(allow=frozenset({"vllm"})), views, None, 0.0)
    assert names(allowed) == ["gpu-1/llama"]
    assert excluded == [("openai/gpt", "is not on the tenant's allow list")]
    allowed, _ = eligible(RequestView(allow=frozenset()), views, None, 0.0)
    assert allowed == []


def test_local_only_never_leaves_our_deployments() -> None:
    views = [view("openai/gpt", 0), view("gpu-1/llama", 1, local=True)]
    allowed, excluded = eligible(RequestView(local_only=True), views, None, 0.0)
    assert names(allowed) == ["gpu-1/llama"]
    assert excluded == [("openai/gpt", "is hosted outside our own deployments, and the request is local-only")]


def test_regions_exclude_other_and_unknown_regions() -> None:
    views = [view("a/m", 0, region="eu-west"), view("b/m", 1, region="us-east"), view("c/m", 2)]
    allowed, excluded = eligible(RequestView(regions=frozenset({"eu-west"})), views, None, 0.0)
    assert names(allowed) == ["a/m"]
    assert excluded == [
        ("b/m", "is in region us-east; the request may only be served in eu-west"),
        ("c/m", "has no known region; the request may only be served in eu-west"),
    ]


def test_required_tags() -> None:
    views = [view("a/m", 0, tags=frozenset({"hipaa", "gpu"})), view("b/m", 1, tags=frozenset({"gpu"}))]
    allowed, excluded = eligible(RequestView(required_tags=frozenset({"hipaa"})), views, None, 0.0)
    assert names(allowed) == ["a/m"]
    assert excluded == [("b/m", "lacks the required tag(s) hipaa")]


def test_capabilities_reuse_unmet_and_unknown_never_excludes() -> None:
    views = [
        view("a/m", 0, capabilities=Capabilities(chat=True, tools=False)),
        view("b/m", 1, capabilities=Capabilities(chat=True, tools=True)),
        view("c/m", 2),
        view("d/m", 3, capabilities=Capabilities(chat=True, max_output=100)),
    ]
    request = RequestView(requirements=Requirements(chat=True, tools=True, max_output=500))
    allowed, excluded = eligible(request, views, None, 0.0)
    assert names(allowed) == ["b/m", "c/m"]
    assert excluded == [
        ("a/m", "does not support tools"),
        ("d/m", "allows at most 100 output tokens (requested 500)"),
    ]


def test_context_window_counts_tokens_only_when_the_body_could_overflow() -> None:
    counted: list[int] = []

    def count() -> int:
        counted.append(1)
        return 9_000

    views = [
        view("small/m", 0, capabilities=Capabilities(context_window=8_192)),
        view("big/m", 1, capabilities=Capabilities(context_window=128_000)),
    ]
    short = RequestView(requirements=Requirements(chat=True, prompt_bytes=2_000), count_prompt_tokens=count)
    allowed, _ = eligible(short, views, None, 0.0)
    assert names(allowed) == ["small/m", "big/m"] and counted == []
    long = RequestView(requirements=Requirements(chat=True, prompt_bytes=40_000), count_prompt_tokens=count)
    allowed, excluded = eligible(long, views, None, 0.0)
    assert names(allowed) == ["big/m"] and counted == [1]
    assert excluded == [("small/m", "has a context window of 8192 tokens; the prompt needs about 9000")]


def test_context_window_fits_when_bytes_overflow_but_tokens_do_not() -> None:
    views = [view("small/m", 0, capabilities=Capabilities(context_window=8_192))]
    request = RequestView(requirements=Requirements(prompt_bytes=20_000), prompt_tokens=5_000)
    allowed, _ = eligible(request, views, None, 0.0)
    assert names(allowed) == ["small/m"]


def test_price_ceiling_excludes_dearer_but_not_unknown_prices() -> None:
    views = [
        view("cheap/m", 0, prices=priced(100_000, 200_000)),
        view("dear/m", 1, prices=priced(10_000_000, 30_000_000)),
        view("unknown/m", 2),
    ]
    request = RequestView(prompt_tokens=1_000, max_output_tokens=1_000, price_ceiling_micro=1_000)
    allowed, excluded = eligible(request, views, None, 0.0)
    assert names(allowed) == ["cheap/m", "unknown/m"]
    assert excluded == [("dear/m", "would cost up to 40000 micro-USD, above the ceiling of 1000")]


def test_price_ceiling_with_given_costs() -> None:
    views = [view("a/m", 0), view("b/m", 1)]
    request = RequestView(price_ceiling_micro=10)
    allowed, excluded = eligible(request, views, None, 0.0, costs={"a/m": 11, "b/m": 10})
    assert names(allowed) == ["b/m"] and excluded[0][0] == "a/m"


def test_open_and_cooling_circuits_are_excluded() -> None:
    registry = BreakerRegistry()
    for _ in range(5):
        registry.record("a/m", 0.0, ok=False)
    registry.cool_down("b/m", 0.0, 10.0)
    views = [view("a/m", 0), view("b/m", 1), view("c/m", 2)]
    allowed, excluded = eligible(RequestView(), views, registry, 1.0)
    assert names(allowed) == ["c/m"]
    assert excluded == [
        ("a/m", "has its circuit open after repeated failures (retry in 29.0 s)"),
        ("b/m", "is rate limited by the upstream (429) for another 9.0 s"),
    ]


def test_first_broken_rule_is_the_reason() -> None:
    views = [view("a/m", 0, capabilities=Capabilities(tools=False))]
    request = RequestView(requirements=Requirements(tools=True), deny=frozenset({"a/m"}))
    _, excluded = eligible(request, views, Blocked({"a/m": "is broken"}), 0.0)
    assert excluded == [("a/m", "is on the tenant's deny list")]
    _, excluded = eligible(RequestView(), views, Blocked({"a/m": "is broken"}), 0.0)
    assert excluded == [("a/m", "is broken")]


def test_view_derives_what_it_rules_out() -> None:
    d = view("a/m", capabilities=Capabilities(chat=True, tools=False, vision=False, streaming=None))
    assert d.lacks == frozenset({"tools", "vision"})
    with pytest.raises(ValueError):
        view("a/m", weight=-1.0)
    with pytest.raises(ValueError):
        view("a/m", weight=float("nan"))


def test_request_prompt_tokens_resolution() -> None:
    assert RequestView().resolved_prompt_tokens() == 0
    assert RequestView(prompt_tokens=7, count_prompt_tokens=lambda: 9).resolved_prompt_tokens() == 7
    assert RequestView(count_prompt_tokens=lambda: 9).resolved_prompt_tokens() == 9
    assert RequestView(requirements=Requirements(streaming=True)).stream


def test_dated_prices_and_caller_costs() -> None:
    schedule = PriceSchedule(
        (Price("old", input=1_000_000, output=1_000_000), Price("new", effective_from=100.0, input=2_000_000))
    )
    d = view("a/m", prices=schedule)
    request = RequestView(prompt_tokens=1_000_000, max_output_tokens=0)
    assert estimated_cost(d, request, 99.0) == 1_000_000
    assert estimated_cost(d, request, 100.0) == 2_000_000
    future = view("b/m", prices=PriceSchedule((Price("later", effective_from=100.0, input=1),)))
    assert estimated_cost(future, request, 50.0) is None
    assert estimated_cost(view("c/m", prices=schedule, estimated_cost_micro=5), request, 0.0) == 5
    assert estimated_costs(request, [d, view("u/m")], 0.0) == {"a/m": 1_000_000, "u/m": None}


rates = st.integers(min_value=0, max_value=50_000_000)


@given(
    input_rate=rates,
    output_rate=rates,
    cached=st.none() | rates,
    cache_write=st.none() | rates,
    reasoning=st.none() | rates,
    prompt=st.integers(min_value=-10, max_value=2_000_000),
    output=st.integers(min_value=-10, max_value=200_000),
)
def test_estimated_cost_is_exactly_the_pricing_estimate(
    input_rate: int,
    output_rate: int,
    cached: int | None,
    cache_write: int | None,
    reasoning: int | None,
    prompt: int,
    output: int,
) -> None:
    price = Price(
        "p", input=input_rate, output=output_rate, cached_input=cached, cache_write=cache_write, reasoning=reasoning
    )
    d = view("a/m", prices=PriceSchedule((price,)))
    request = RequestView(prompt_tokens=prompt, max_output_tokens=output)
    assert estimated_cost(d, request, 0.0) == estimate_cost_micro_usd(price, prompt, output)
