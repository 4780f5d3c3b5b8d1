"""What a request costs: dated prices and integer arithmetic in micro-USD (one millionth of a dollar).

Config and the catalog state prices in USD per million tokens (per image, per audio minute); they are
converted once, exactly, by `usd_to_micro`, and every cost after that is an integer. Token counts follow
OpenAI's convention: cached and cache-write tokens are inside `prompt_tokens`, reasoning tokens inside
`completion_tokens`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

MICRO_PER_USD = 1_000_000
TOKENS_PER_RATE = 1_000_000
"""Token rates are per million tokens."""

_RATE_FIELDS = ("input", "output", "cached_input", "cache_write", "reasoning", "per_image", "per_audio_minute")
_ENTRY_FIELDS = frozenset({"effective", *_RATE_FIELDS})


def usd_to_micro(value: float | int | str) -> int:
    """USD as an exact integer number of micro-USD: `0.15` → 150_000, `"2.5"` → 2_500_000.

    Goes through `Decimal(str(value))`, so a float is read as the literal it prints as, not its binary
    approximation. Raises ValueError for negatives, non-numbers, and values finer than one micro-USD
    (which in a per-million-token rate usually means a per-token price was given by mistake).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a price must be a number of USD, not {value!r}")
    try:
        usd = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"a price must be a number of USD, not {value!r}") from None
    if not usd.is_finite():
        raise ValueError(f"a price must be finite, not {value!r}")
    if usd < 0:
        raise ValueError(f"a price cannot be negative: {value!r}")
    micro = usd * MICRO_PER_USD
    if micro != micro.to_integral_value():
        raise ValueError(f"a price must be a whole number of micro-USD: {value!r}")
    return int(micro)


@dataclass(frozen=True, slots=True)
class Price:
    """Rates in micro-USD per million tokens (so 0.15 USD/M is 150_000), per image, per audio minute."""

    version: str
    """Names the price a cost was rated with, e.g. `catalog:gpt-4o-mini@2024-07-18`."""
    effective_from: float | None = None
    """UNIX seconds (UTC midnight of the date); None: in force since always."""
    input: int = 0
    output: int = 0
    cached_input: int | None = None
    """None: same as `input`."""
    cache_write: int | None = None
    """None: same as `input`."""
    reasoning: int | None = None
    """None: same as `output`."""
    per_image: int = 0
    per_audio_minute: int = 0

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            rate = getattr(self, name)
            if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 0):
                raise ValueError(f"{self.version}: {name} must be a non-negative integer of micro-USD, not {rate!r}")

    @property
    def cached_input_rate(self) -> int:
        return self.input if self.cached_input is None else self.cached_input

    @property
    def cache_write_rate(self) -> int:
        return self.input if self.cache_write is None else self.cache_write

    @property
    def reasoning_rate(self) -> int:
        return self.output if self.reasoning is None else self.reasoning


@dataclass(frozen=True, slots=True)
class PriceSchedule:
    prices: tuple[Price, ...]
    """Sorted by `effective_from`, None (always) first; no two share a start."""

    def __post_init__(self) -> None:
        starts = [_start(p) for p in self.prices]
        if any(a >= b for a, b in itertools.pairwise(starts)):
            raise ValueError("a price schedule must be sorted by effective date with no two on the same date")

    def at(self, ts: float) -> Price | None:
        """The price in force at UNIX time `ts`: the latest one effective at or before it; None if none yet."""
        for price in reversed(self.prices):
            if _start(price) <= ts:
                return price
        return None


def _start(price: Price) -> float:
    return -math.inf if price.effective_from is None else price.effective_from


def schedule_from_entries(entries: Sequence[Mapping[str, Any]], *, source: str, model: str) -> PriceSchedule:
    """Dated prices from config or catalog entries in USD, e.g.
    `{"effective": "2024-07-18", "input": 0.15, "output": 0.6, "cached_input": 0.075}`.

    Token rates are USD per million tokens; `per_image` and `per_audio_minute` are USD each. `effective`
    (an ISO date, or a `date` as YAML parses it) starts the price at UTC midnight; without it the price
    has always been in force. Each price's version is `{source}:{model}@{effective or 'always'}`.
    Raises ValueError, naming the model and entry, for unknown fields, bad dates or amounts, two
    entries on one date, or no entries.
    """
    where = f"{source}:{model}"
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence) or not entries:
        raise ValueError(f"{where}: prices must be a non-empty list of entries")
    prices = [_price_from_entry(entry, where, i) for i, entry in enumerate(entries)]
    prices.sort(key=_start)
    for a, b in itertools.pairwise(prices):
        if _start(a) == _start(b):
            raise ValueError(f"{where}: two prices effective at {b.version.rpartition('@')[2]}")
    return PriceSchedule(tuple(prices))


def _price_from_entry(entry: Mapping[str, Any], where: str, index: int) -> Price:
    label = f"{where} price #{index + 1}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{label}: must be a mapping of fields, not {entry!r}")
    unknown = sorted(str(k) for k in entry if k not in _ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"{label}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENTRY_FIELDS))}")
    rates: dict[str, int] = {}
    for name in _RATE_FIELDS:
        if entry.get(name) is None:
            continue
        try:
            rates[name] = usd_to_micro(entry[name])
        except ValueError as e:
            raise ValueError(f"{label}: {name}: {e}") from None
    if not rates:
        raise ValueError(f"{label}: no rates given (at least one of {', '.join(_RATE_FIELDS)})")
    day = _effective_day(entry.get("effective"), label)
    effective_from = None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    version = f"{where}@{day.isoformat() if day is not None else 'always'}"
    return Price(version=version, effective_from=effective_from, **rates)


def _effective_day(value: Any, label: str) -> date | None:
    if value is None:
        return None
    # YAML reads an unquoted 2024-07-18 as a date; a datetime would carry a time the schedule ignores.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:  # exactly YYYY-MM-DD: fromisoformat alone also takes 20240718, 2024-W29
                return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{label}: effective must be a date as YYYY-MM-DD, not {value!r}")


def cost_micro_usd(
    price: Price,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    images: int = 0,
    audio_seconds: float = 0.0,
) -> int:
    """The cost of one request's usage in micro-USD.

    Cached and cache-write tokens are taken out of the prompt, reasoning tokens out of the completion,
    each clamped so inconsistent counts (cached > prompt) never make a count negative. Token costs are
    summed exactly and rounded half-up once; audio is rounded half-up on its own.
    """
    prompt = max(prompt_tokens, 0)
    cached = min(max(cached_tokens, 0), prompt)
    cache_write = min(max(cache_write_tokens, 0), prompt - cached)
    completion = max(completion_tokens, 0)
    reasoning = min(max(reasoning_tokens, 0), completion)
    token_cost = (
        (prompt - cached - cache_write) * price.input
        + cached * price.cached_input_rate
        + cache_write * price.cache_write_rate
        + (completion - reasoning) * price.output
        + reasoning * price.reasoning_rate
    )
    return (
        _div_half_up(token_cost, TOKENS_PER_RATE) + max(images, 0) * price.per_image + _audio_cost(price, audio_seconds)
    )


def _audio_cost(price: Price, audio_seconds: float) -> int:
    if not price.per_audio_minute or not math.isfinite(audio_seconds) or audio_seconds <= 0:
        return 0
    # Fraction of the printed decimal keeps 1.5 s exact; a tie (x.5 micro-USD) rounds up.
    exact = Fraction(Decimal(str(audio_seconds))) * price.per_audio_minute / 60
    return math.floor(exact + Fraction(1, 2))


def _div_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def estimate_cost_micro_usd(price: Price, prompt_tokens: int, max_output_tokens: int) -> int:
    """An upper bound on `cost_micro_usd` for a request not yet sent, to reserve budget with.

    Every prompt token at the dearest input rate (plain, cached or cache write), every possible output
    token at the dearer of output and reasoning, rounded up. Images and audio are not included.
    """
    input_rate = max(price.input, price.cached_input_rate, price.cache_write_rate)
    output_rate = max(price.output, price.reasoning_rate)
    numerator = max(prompt_tokens, 0) * input_rate + max(max_output_tokens, 0) * output_rate
    return -(-numerator // TOKENS_PER_RATE)
