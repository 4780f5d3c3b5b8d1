"""Admission leases: a small share of a tenant's limits and budgets granted to one gateway for a moment.

Far from its limits, a busy tenant's requests need not each ask Redis: one admission call reserves room
for `n` requests at once (their rate-limit permits, their tokens, their estimated cost, all charged in
Redis exactly as `n` single admissions would be), and the gateway then admits from that lease locally
until it is used up or `LEASE_SECONDS` have passed. What a lease did not use goes back to Redis; the
cost each request reserved is released by its own settlement, as for a single admission.

A lease never takes more than `LEASE_SHARE` of a limit's per-minute capacity or of a budget, nor more
than is free, and is not worth having below `MIN_REQUESTS`: near a limit every request is admitted by
its own Redis call, exactly. So budgets hold as before (every admitted request's estimate is reserved in
Redis before it runs), and a replica can refuse at most `LEASE_SHARE` of a limit early while another
holds it unused. Sizing follows demand: a lease used up in time asks for twice as many the next time,
one that ran out of time asks for twice what it used.

Pure bookkeeping with the clock passed in; `gateway/admission.py` talks to Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

LEASE_SECONDS = 1.0
"""How long a lease is used before its remainder goes back."""
LEASE_SHARE = 0.01
"""The largest share of one limit (per minute) or one budget that a lease may hold."""
MIN_REQUESTS = 8
"""A lease that cannot cover this many requests is not granted: the request is admitted on its own."""
MAX_REQUESTS = 4096
TOKEN_MARGIN = 1.5
"""A lease's tokens and cost per request: the asking request's estimate times this (prompts vary)."""


@dataclass(slots=True)
class Lease:
    """What is left of one lease. `tokens` and `cost` matter only where token limits or budgets apply."""

    id: str
    granted: int
    requests: int
    tokens: int
    cost: int
    use_until: float
    expires: float
    """When Redis releases the lease's reservation by itself (a gateway that died): a request admitted from
    it must finish before then."""

    def take(self, now: float, tokens: int, cost: int, hold: float) -> bool:
        """Admit one request needing `tokens` and `cost` that may run for `hold` seconds, if the lease covers it."""
        if (
            now >= self.use_until
            or now + hold > self.expires
            or self.requests < 1
            or self.tokens < tokens
            or self.cost < cost
        ):
            return False
        self.requests -= 1
        self.tokens -= tokens
        self.cost -= cost
        return True

    def exhausted_early(self, now: float) -> bool:
        return self.requests < 1 and now < self.use_until


def next_size(previous: Lease | None, now: float) -> int:
    """How many requests the next lease of the same principal and model should ask for."""
    if previous is None:
        return MIN_REQUESTS * 2
    if previous.exhausted_early(now):
        return min(MAX_REQUESTS, previous.granted * 2)
    used = previous.granted - previous.requests
    return max(MIN_REQUESTS, min(MAX_REQUESTS, used * 2))


def per_request(estimate: int) -> int:
    """The tokens or micro-USD a lease sets aside per request, from the asking request's estimate."""
    return int(estimate * TOKEN_MARGIN) + 1 if estimate > 0 else 0
