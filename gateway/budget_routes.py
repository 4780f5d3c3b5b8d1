"""Budget status: limit, spend, reservations in flight and projected period-end spend, per budget.

`GET /admin/v1/budgets[?tenant=T]` (admin key) and `GET /v1/budgets` (a tenant key: its own tenant).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_routes import credentials
from gateway.admission_rules import reserved_key, safe, spend_key
from gateway.config.tenancy import BudgetConfig
from policies.budgets import period_window, projected_spend

if TYPE_CHECKING:
    from gateway.runtime import Runtime


async def budget_status(runtime: Runtime, tenants: list[str] | None) -> list[dict[str, Any]]:
    config = runtime.state.config
    wanted: list[tuple[str, str, BudgetConfig]] = []
    names = tenants if tenants is not None else sorted(config.tenants)
    for tenant in names:
        tenant_config = config.tenants.get(tenant)
        if tenant_config is not None:
            wanted.extend((tenant, "tenant", b) for b in tenant_config.budget)
            for team, team_config in tenant_config.teams.items():
                wanted.extend((tenant, f"team:{safe(team)}", b) for b in team_config.budget)
        for principal in runtime.state.keys.principals():
            if principal.tenant == tenant:
                wanted.extend((tenant, f"key:{safe(principal.key_id)}", b) for b in principal.budgets)
    for key in await runtime.keys.list():
        if (tenants is None or key.tenant in tenants) and key.active(time.time()):
            wanted.extend((key.tenant, f"key:{safe(key.key_id)}", b) for b in key.budgets)
    now = time.time()
    windows = [period_window(b.period, now) for _, _, b in wanted]
    async with runtime.store.redis.pipeline(transaction=False) as pipe:
        for (tenant, scope, _), window in zip(wanted, windows, strict=True):
            pipe.get(spend_key(tenant, scope, window.id))
            pipe.get(reserved_key(tenant, scope, window.id))
        values = await pipe.execute()
    out = []
    for index, ((tenant, scope, budget), window) in enumerate(zip(wanted, windows, strict=True)):
        spend = int(values[2 * index] or 0)
        reserved = max(0, int(values[2 * index + 1] or 0))
        limit = round(budget.usd * 1_000_000)
        projected = projected_spend(spend, window, now)
        out.append(
            {
                "tenant": tenant,
                "scope": scope,
                "period": budget.period,
                "period_start": window.start,
                "period_end": window.end,
                "limit_usd": budget.usd,
                "spend_usd": spend / 1e6,
                "reserved_usd": reserved / 1e6,
                "remaining_usd": max(0, limit - spend - reserved) / 1e6,
                "utilization": spend / limit,
                "projected_spend_usd": projected / 1e6 if projected is not None else None,
                "alert_at": list(budget.alert_at),
            }
        )
    return out


def budget_routes(runtime: Runtime) -> list[Route]:
    async def admin_budgets(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        tenant = request.query_params.get("tenant")
        return JSONResponse({"object": "list", "data": await budget_status(runtime, [tenant] if tenant else None)})

    async def own_budgets(request: Request) -> Response:
        principal = await runtime.authenticate(credentials(request))
        tenants = None if principal.is_admin else [principal.tenant]
        return JSONResponse({"object": "list", "data": await budget_status(runtime, tenants)})

    return [
        Route("/admin/v1/budgets", admin_budgets, methods=["GET"]),
        Route("/v1/budgets", own_budgets, methods=["GET"]),
    ]
