from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.pricing import (
    Price,
    PriceSchedule,
    cost_micro_usd,
    estimate_cost_micro_usd,
    schedule_from_entries,
    usd_to_micro,
)
from providers import catalog


def ts(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("usd", "micro"),
    [
        (0.15, 150_000),
        ("2.5", 2_500_000),
        (1e-6, 1),
        (0, 0),
        (3, 3_000_000),
        (0.075, 75_000),
        (18.75, 18_750_000),
        (" 0.30 ", 300_000),
    ],
)
def test_usd_to_micro(usd: float | int | str, micro: int) -> None:
    assert usd_to_micro(usd) == micro


@pytest.mark.parametrize("bad", [-0.01, "-1", "abc", float("nan"), float("inf"), True, None, 1.5e-7])
def test_usd_to_micro_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        usd_to_micro(bad)  # type: ignore[arg-type]


def test_tokens_priced_per_million_rounded_half_up_once() -> None:
    price = Price("t", input=150_000, output=600_000)  # gpt-4o-mini
    assert cost_micro_usd(price, prompt_tokens=1_000_000, completion_tokens=0) == 150_000
    assert cost_micro_usd(price, prompt_tokens=1000, completion_tokens=500) == 150 + 300
    # 3 * 0.15 + 1 * 0.6 = 1.05 micro-USD: summed before rounding, not 0 + 1
    assert cost_micro_usd(price, prompt_tokens=3, completion_tokens=1) == 1
    assert cost_micro_usd(Price("t", input=500_000), prompt_tokens=1, completion_tokens=0) == 1  # 0.5 rounds up
    assert cost_micro_usd(Price("t", input=499_999), prompt_tokens=1, completion_tokens=0) == 0


def test_cached_and_cache_write_are_inside_the_prompt() -> None:
    price = Price("t", input=3_000_000, output=15_000_000, cached_input=300_000, cache_write=3_750_000)
    cost = cost_micro_usd(
        price, prompt_tokens=10_000, completion_tokens=1000, cached_tokens=6000, cache_write_tokens=2000
    )
    # 2000 plain * 3 + 6000 * 0.3 + 2000 * 3.75 + 1000 * 15
    assert cost == 6000 + 1800 + 7500 + 15_000


def test_anthropic_cache_write_costs_more_than_input() -> None:
    price = Price("t", input=3_000_000, cached_input=300_000, cache_write=3_750_000)
    plain = cost_micro_usd(price, prompt_tokens=4000, completion_tokens=0)
    written = cost_micro_usd(price, prompt_tokens=4000, completion_tokens=0, cache_write_tokens=4000)
    read = cost_micro_usd(price, prompt_tokens=4000, completion_tokens=0, cached_tokens=4000)
    assert (read, plain, written) == (1200, 12_000, 15_000)


def test_unset_rates_fall_back() -> None:
    price = Price("t", input=2_000_000, output=8_000_000)
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000}
    assert cost_micro_usd(price, **usage, cached_tokens=500, reasoning_tokens=700) == cost_micro_usd(price, **usage)


def test_reasoning_tokens_inside_completion() -> None:
    price = Price("t", output=4_000_000, reasoning=10_000_000)
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=1000, reasoning_tokens=600) == 1600 + 6000


def test_inconsistent_counts_never_go_negative() -> None:
    price = Price("t", input=1_000_000, output=1_000_000, cached_input=0, cache_write=2_000_000, reasoning=0)
    # cached is clamped to the prompt, leaving no room for cache writes; reasoning to the completion
    assert (
        cost_micro_usd(
            price, prompt_tokens=10, completion_tokens=5, cached_tokens=50, cache_write_tokens=7, reasoning_tokens=9
        )
        == 0
    )
    assert cost_micro_usd(price, prompt_tokens=10, completion_tokens=0, cached_tokens=4, cache_write_tokens=9) == 12
    assert cost_micro_usd(price, prompt_tokens=-5, completion_tokens=-1, images=-2, audio_seconds=-3.0) == 0


def test_images_and_audio() -> None:
    price = Price("t", per_image=40_000, per_audio_minute=6000)
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, images=3) == 120_000
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, audio_seconds=90) == 9000
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, audio_seconds=0.01) == 1  # 1.0 exactly
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, audio_seconds=0.005) == 1  # 0.5 rounds up
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, audio_seconds=0.004) == 0
    assert cost_micro_usd(price, prompt_tokens=0, completion_tokens=0, audio_seconds=float("nan")) == 0


def test_estimate_is_an_upper_bound_rounded_up() -> None:
    price = Price("t", input=3_000_000, output=15_000_000, cached_input=300_000, cache_write=3_750_000)
    assert estimate_cost_micro_usd(price, 1000, 100) == 3750 + 1500
    assert estimate_cost_micro_usd(Price("t", input=150_000), 1, 0) == 1  # 0.15 micro-USD reserves 1
    assert estimate_cost_micro_usd(Price("t", output=1, reasoning=9), 0, 1_000_000) == 9


@st.composite
def prices(draw: st.DrawFn) -> Price:
    rate = st.integers(min_value=0, max_value=100_000_000)
    return Price(
        "p",
        input=draw(rate),
        output=draw(rate),
        cached_input=draw(st.none() | rate),
        cache_write=draw(st.none() | rate),
        reasoning=draw(st.none() | rate),
    )


@given(prices(), st.data())
def test_estimate_bounds_any_completion_and_split(price: Price, data: st.DataObject) -> None:
    prompt = data.draw(st.integers(min_value=0, max_value=2_000_000))
    max_output = data.draw(st.integers(min_value=0, max_value=200_000))
    completion = data.draw(st.integers(min_value=0, max_value=max_output))
    cached = data.draw(st.integers(min_value=0, max_value=prompt))
    cache_write = data.draw(st.integers(min_value=0, max_value=prompt - cached))
    reasoning = data.draw(st.integers(min_value=0, max_value=completion))
    actual = cost_micro_usd(
        price,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )
    assert estimate_cost_micro_usd(price, prompt, max_output) >= actual


def test_schedule_from_entries() -> None:
    schedule = schedule_from_entries(
        [
            {"effective": "2025-06-10", "input": 2, "cached_input": 0.5, "output": 8},
            {"effective": "2025-04-16", "input": "10", "cached_input": 2.5, "output": 40},
        ],
        source="catalog",
        model="o3",
    )
    old, new = schedule.prices
    assert old == Price(
        "catalog:o3@2025-04-16",
        effective_from=ts("2025-04-16"),
        input=10_000_000,
        output=40_000_000,
        cached_input=2_500_000,
    )
    assert new.version == "catalog:o3@2025-06-10"
    assert schedule.at(ts("2025-04-15") + 86399.5) is None  # before the first price
    assert schedule.at(ts("2025-04-16")) is old
    assert schedule.at(ts("2025-06-10") - 1) is old
    assert schedule.at(ts("2025-06-10")) is new
    assert schedule.at(ts("2030-01-01")) is new


def test_undated_entry_is_in_force_until_a_dated_one() -> None:
    schedule = schedule_from_entries(
        [{"input": 1}, {"effective": date(2026, 1, 1), "input": 0.5}], source="deployment", model="gpu-1/llama"
    )
    assert [p.version for p in schedule.prices] == [
        "deployment:gpu-1/llama@always",
        "deployment:gpu-1/llama@2026-01-01",
    ]
    assert schedule.at(0).input == 1_000_000  # type: ignore[union-attr]
    assert schedule.at(ts("2026-01-01")).input == 500_000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"input": 1, "ouput": 2}], "unknown field(s) ouput"),
        ([{"effective": "2024-13-01", "input": 1}], "effective must be a date"),
        ([{"effective": "20240718", "input": 1}], "effective must be a date"),
        ([{"effective": datetime(2024, 7, 18), "input": 1}], "effective must be a date"),
        ([{"effective": "2024-07-18", "input": -1}], "input: a price cannot be negative"),
        ([{"input": "cheap"}], "input: a price must be a number"),
        ([{"effective": "2024-07-18"}], "no rates given"),
        ([{"input": 1}, {"input": 2}], "two prices effective at always"),
        ([], "non-empty list"),
        (["0.15"], "must be a mapping"),
    ],
)
def test_bad_entries_raise_a_clear_error(entries: list[object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        schedule_from_entries(entries, source="x", model="m")  # type: ignore[arg-type]
    assert str(info.value).startswith("x:m") and message in str(info.value)


def test_schedule_must_be_sorted() -> None:
    with pytest.raises(ValueError):
        PriceSchedule((Price("b", effective_from=2.0), Price("a", effective_from=1.0)))
    with pytest.raises(ValueError):
        Price("t", input=-1)


def test_price_entries_match_like_lookup() -> None:
    key, entries = catalog.price_entries("gpt-4o-mini-2024-07-18")  # type: ignore[misc]
    assert key == "gpt-4o-mini"
    assert entries[0]["input"] == 0.15
    assert catalog.price_entries("GPT-4O-2024-08-06")[0] == "gpt-4o"  # type: ignore[index]
    assert catalog.price_entries("claude-3-5-sonnet-20241022")[0] == "claude-3-5-sonnet"  # type: ignore[index]
    assert catalog.price_entries("models/gemini-2.5-pro-preview-05-06")[0] == "gemini-2.5-pro"  # type: ignore[index]
    assert catalog.price_entries("gpt-4o-minimal") is None
    assert catalog.price_entries("llama-3.1-8b-instant") is None  # in the catalog, without a list price
    assert catalog.price_entries("no-such-model") is None


def test_price_entries_are_copies() -> None:
    _, entries = catalog.price_entries("gpt-4.1")  # type: ignore[misc]
    entries[0]["input"] = 0
    entries.clear()
    assert catalog.price_entries("gpt-4.1")[1][0]["input"] == 2.0  # type: ignore[index]


def test_every_catalog_price_loads() -> None:
    prices = catalog._catalog()["prices"]
    models = catalog._catalog()["models"]
    assert prices and set(prices) <= set(models)
    date.fromisoformat(catalog.prices_date())
    for model in prices:
        key, entries = catalog.price_entries(model)  # type: ignore[misc]
        assert key == model
        schedule = schedule_from_entries(entries, source="catalog", model=key)
        assert schedule.at(ts(catalog.prices_date())) is not None, model


def test_catalog_anthropic_cache_rates() -> None:
    """Cache reads at 0.1x input and 5-minute cache writes at 1.25x, except where Anthropic publishes
    rounded figures (Haiku 3: $0.03 and $0.30 against $0.25 input)."""
    published = {"claude-3-haiku": (30_000, 300_000)}
    claude = [m for m in catalog._catalog()["prices"] if m.startswith("claude")]
    assert len(claude) == 7
    for model in claude:
        key, entries = catalog.price_entries(model)  # type: ignore[misc]
        for price in schedule_from_entries(entries, source="catalog", model=key).prices:
            expected = published.get(model, (price.input // 10, price.input * 5 // 4))
            assert (price.cached_input, price.cache_write) == expected, model
