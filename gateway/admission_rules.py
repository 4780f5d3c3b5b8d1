"""What admission checks for a request and what it grants: the rules of a principal and model, the
ticket, and the names of the Redis keys (every one under the tenant's hash tag, for Redis Cluster)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.asgi_io import Headers
from gateway.auth import Principal
from gateway.config.tenancy import BudgetConfig, RateLimitConfig, TenantConfig
from policies.budgets import PeriodWindow

WINDOW_MS = 60_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/-]")


def safe(part: str) -> str:
    """A name made safe for a Redis key segment (config key names are free text)."""
    return _UNSAFE.sub("_", part)


def reservation_keys(tenant: str) -> tuple[str, str]:
    return f"sy:{{{tenant}}}:resv", f"sy:{{{tenant}}}:resv:held"


def spend_key(tenant: str, scope: str, period_id: str) -> str:
    return f"sy:{{{tenant}}}:spend:{scope}:{period_id}"


def reserved_key(tenant: str, scope: str, period_id: str) -> str:
    return f"sy:{{{tenant}}}:reserved:{scope}:{period_id}"


def limit_key(tenant: str, scope: str, unit: str) -> str:
    return f"sy:{{{tenant}}}:rl:{scope}:{unit}"


def spend_scopes(principal: Principal) -> tuple[str, ...]:
    """Every scope whose spend the ledger counts for this principal (budgets or not, so a budget added
    mid-period sees the period's spend): the tenant, its team, its key."""
    scopes = ["tenant"]
    if principal.team:
        scopes.append(f"team:{safe(principal.team)}")
    scopes.append(f"key:{safe(principal.key_id)}")
    return tuple(scopes)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    scope: str
    """`tenant`, `team:<name>` or `key:<id>`."""
    budget: BudgetConfig
    limit: int
    """micro-USD."""
    window: PeriodWindow


@dataclass(frozen=True, slots=True)
class LimitCheck:
    scope: str
    unit: str
    """`rpm` or `tpm`."""
    limit: int


@dataclass(frozen=True, slots=True)
class Rules:
    """The budgets and limits that apply to one principal and model, from the config and the key."""

    budgets: tuple[tuple[str, BudgetConfig], ...]
    limits: tuple[LimitCheck, ...]
    outage: TenantConfig | None
    model: str = ""

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.limits

    @property
    def needs_tokens(self) -> bool:
        return bool(self.budgets) or any(limit.unit == "tpm" for limit in self.limits)


def rules_for(principal: Principal, tenant: TenantConfig | None, model: str) -> Rules:
    budgets: list[tuple[str, BudgetConfig]] = []
    limits: list[LimitCheck] = []

    def add_limits(scope: str, config: RateLimitConfig | None) -> None:
        if config is not None:
            if config.rpm:
                limits.append(LimitCheck(scope, "rpm", config.rpm))
            if config.tpm:
                limits.append(LimitCheck(scope, "tpm", config.tpm))

    if tenant is not None:
        budgets.extend(("tenant", b) for b in tenant.budget)
        add_limits("tenant", tenant.rate_limit)
        add_limits(f"model:{safe(model)}", tenant.model_limits.get(model))
        team = tenant.teams.get(principal.team) if principal.team else None
        if team is not None:
            scope = f"team:{safe(principal.team or '')}"
            budgets.extend((scope, b) for b in team.budget)
            add_limits(scope, team.rate_limit)
    key_scope = f"key:{safe(principal.key_id)}"
    budgets.extend((key_scope, b) for b in principal.budgets)
    add_limits(key_scope, principal.rate_limit)
    return Rules(tuple(budgets), tuple(limits), tenant, model)


@dataclass(frozen=True, slots=True)
class Ticket:
    """What admission granted one request; the ledger settles it."""

    reserved: int = 0
    """micro-USD reserved against each budget (released at settlement)."""
    estimated_tokens: int = 0
    tpm: tuple[tuple[str, float], ...] = ()
    """GCRA keys charged in tokens, with their emission interval in ms, for the ledger's correction."""
    budgets: tuple[BudgetCheck, ...] = ()
    headers: Headers | None = None
    lease: str | None = None
    """The lease it was admitted from, whose reservation its settlement draws `reserved` from."""


NO_TICKET = Ticket()
