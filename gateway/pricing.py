"""Prices per deployment (its own `price:` or the catalog's list price) and the cost of one usage."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gateway.config.tenancy import PriceConfig
from policies.pricing import Price, PriceSchedule, cost_micro_usd, estimate_cost_micro_usd, schedule_from_entries
from providers.base import Usage
from providers.catalog import price_entries


@dataclass(frozen=True, slots=True)
class Rated:
    cost: int
    """micro-USD charged: the deployment's own price, else the catalog's."""
    list_cost: int
    """micro-USD at the catalog's list price (the charged cost when the catalog has none)."""
    version: str | None


UNPRICED = Rated(0, 0, None)


@dataclass(frozen=True, slots=True)
class Pricing:
    own: PriceSchedule | None
    listed: PriceSchedule | None

    def rate(self, usage: Usage, ts: float, images: int = 0, audio_seconds: float = 0.0) -> Rated:
        """The cost of `usage` at the prices in force at `ts` (past costs are never re-rated)."""
        schedule = self.own or self.listed
        charged = schedule.at(ts) if schedule is not None else None
        if charged is None:
            return UNPRICED
        cost = _cost(charged, usage, images, audio_seconds)
        listed = self.listed.at(ts) if self.listed is not None else None
        list_cost = _cost(listed, usage, images, audio_seconds) if listed is not None else cost
        return Rated(cost, list_cost, charged.version)

    def estimate(self, ts: float, prompt_tokens: int, output_tokens: int) -> int:
        """An upper bound of the cost (for budget reservations); 0 when no price is known."""
        schedule = self.own or self.listed
        price = schedule.at(ts) if schedule is not None else None
        return estimate_cost_micro_usd(price, prompt_tokens, output_tokens) if price is not None else 0


def _cost(price: Price, usage: Usage, images: int, audio_seconds: float) -> int:
    return cost_micro_usd(
        price,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        images=images,
        audio_seconds=audio_seconds,
    )


def deployment_pricing(deployment_name: str, upstream_model: str, own: tuple[PriceConfig, ...]) -> Pricing:
    """Raises ValueError for a bad `price:` list (the config check reports it with its path)."""
    schedule = (
        schedule_from_entries([p.entry() for p in own], source="deployment", model=deployment_name) if own else None
    )
    return Pricing(schedule, catalog_schedule(upstream_model))


@cache
def catalog_schedule(upstream_model: str) -> PriceSchedule | None:
    found = price_entries(upstream_model)
    if found is None:
        return None
    key, entries = found
    return schedule_from_entries(entries, source="catalog", model=key)
