"""Usage events as a FinOps FOCUS cost and usage dataset (CSV). Pure: no I/O.

Columns follow FOCUS 1.2 (https://focus.finops.org/focus-specification/v1-2/): column IDs as
the spec spells them, FOCUS columns first in alphabetical order, then custom columns prefixed
`x_`. Date/times are `YYYY-MM-DDTHH:mm:ssZ` (UTC), amounts exact decimals in USD, null is an
empty cell. One row per charge period (the bucket), tenant, deployment and model (and the
provider that served it, when a deployment name was reused across config reloads); charges with neither
tokens nor cost (requests that failed before any usage) are left out.

Switchyard is the provider (it invoices the tenants); the upstream API or own GPU server is the
service (`ServiceName`, the config's provider name) and its kind the publisher. Tags keep the
client's `x-switchyard-tags` keys unaltered (one user-defined scheme) and prefix Switchyard's own
attribution with `switchyard/` (team, project), as the spec requires of provider-defined tags; a
key appears only when every event of the row has the same value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from gateway.reports.aggregate import (
    USAGE_FIELDS,
    Event,
    Usage,
    event_counters,
    iso,
    millionths,
    parse_bucket,
    period_bounds,
    usd,
)
from gateway.reports.render import spreadsheet_safe
from providers.errors import InvalidRequest

FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
CUSTOM_COLUMNS = (
    "x_Requests",
    "x_ErrorRequests",
    "x_EstimatedRequests",
    "x_InputTokens",
    "x_OutputTokens",
    "x_CachedInputTokens",
)
COLUMNS = FOCUS_COLUMNS + CUSTOM_COLUMNS
PROVIDER = "Switchyard"
PRICING_UNIT = "1000000 Tokens"
"""FOCUS unit format: `<unit-quantity> <plural-units>` with an integer quantity ("1M" is not one)."""
_TAG_PREFIX = "switchyard/"


@dataclass(slots=True)
class _Charge:
    start: datetime
    end: datetime
    tenant: str
    deployment: str | None
    model: str
    provider: str | None
    provider_kind: str | None
    sums: list[int] = field(default_factory=lambda: [0] * len(USAGE_FIELDS))
    tags: dict[str, str] | None = None
    """The tags every event so far agrees on; None before the first event."""


def focus_rows(
    events: Iterable[Event], *, bucket: str = "day", billing_account: str = "switchyard"
) -> list[dict[str, str]]:
    """Raises InvalidRequest for bucket "none": a FOCUS charge period must lie inside one billing month."""
    period = parse_bucket(bucket)
    if period == "none":
        raise InvalidRequest("The FOCUS export needs bucket hour, day or month.", param="bucket")
    charges: dict[tuple[Any, ...], _Charge] = {}
    for event in events:
        start, end = period_bounds(float(event["ts"]), period)
        key = (
            start,
            str(event["tenant"]),
            event.get("deployment"),
            str(event.get("model")),
            event.get("provider"),
            event.get("provider_kind"),
        )
        charge = charges.get(key)
        if charge is None:
            charge = charges[key] = _Charge(start, end, *key[1:])
        for i, n in enumerate(event_counters(event)):
            charge.sums[i] += n
        charge.tags = _common_tags(charge.tags, _event_tags(event))
    ordered = sorted(charges.values(), key=lambda c: (c.start, c.tenant, c.deployment or "", c.model, c.provider or ""))
    rows = []
    for charge in ordered:
        usage = Usage(*charge.sums)
        if (
            usage.total_tokens or usage.cost_micro_usd or usage.list_cost_micro_usd
        ):  # failures without usage cost nothing
            rows.append(_row(charge, usage, billing_account))
    return rows


def to_focus_csv(events: Iterable[Event], *, bucket: str = "day", billing_account: str = "switchyard") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in focus_rows(events, bucket=bucket, billing_account=billing_account):
        writer.writerow({name: value if name == "Tags" else spreadsheet_safe(value) for name, value in row.items()})
    return out.getvalue()


def _row(charge: _Charge, usage: Usage, billing_account: str) -> dict[str, str]:
    prompt, completion, cost = usage.prompt_tokens, usage.completion_tokens, usage.cost_micro_usd
    month_start, month_end = period_bounds(charge.start.timestamp(), "month")
    deployment = charge.deployment or ""
    service = charge.provider or PROVIDER
    description = f"{charge.model} via {deployment or 'no deployment'}: {prompt} input and {completion} output tokens"
    return {
        "BilledCost": usd(cost),
        "BillingAccountId": billing_account,
        "BillingAccountName": billing_account,
        "BillingCurrency": "USD",
        "BillingPeriodEnd": iso(month_end),
        "BillingPeriodStart": iso(month_start),
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": iso(charge.end),
        "ChargePeriodStart": iso(charge.start),
        "ConsumedQuantity": str(usage.total_tokens),
        "ConsumedUnit": "Tokens",
        "ContractedCost": usd(cost),
        "EffectiveCost": usd(cost),
        "InvoiceIssuerName": PROVIDER,
        "ListCost": usd(usage.list_cost_micro_usd),
        "PricingQuantity": millionths(usage.total_tokens),
        "PricingUnit": PRICING_UNIT,
        "ProviderName": PROVIDER,
        "PublisherName": charge.provider_kind or service,
        "ResourceId": deployment,
        "ResourceName": charge.model,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": service,
        "ServiceSubcategory": "Generative AI",
        "SubAccountId": charge.tenant,
        "SubAccountName": charge.tenant,
        "Tags": orjson.dumps(charge.tags, option=orjson.OPT_SORT_KEYS).decode() if charge.tags else "",
        "x_Requests": str(usage.requests),
        "x_ErrorRequests": str(usage.errors),
        "x_EstimatedRequests": str(usage.estimated_requests),
        "x_InputTokens": str(prompt),
        "x_OutputTokens": str(completion),
        "x_CachedInputTokens": str(usage.cached_tokens),
    }


def _event_tags(event: Event) -> dict[str, str]:
    tags = {str(k): str(v) for k, v in (event.get("tags") or {}).items()}
    for name in ("team", "project"):
        if event.get(name) is not None:
            tags[_TAG_PREFIX + name] = str(event[name])
    return tags


def _common_tags(common: dict[str, str] | None, tags: dict[str, str]) -> dict[str, str]:
    if common is None:
        return tags
    return {k: v for k, v in common.items() if tags.get(k) == v}
