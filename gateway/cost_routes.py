"""Cost reports over HTTP: `GET /admin/v1/costs` (admin key, any tenant) and `GET /v1/usage` (a
tenant key sees its own tenant only).

Query parameters, all optional:

    since     ISO date or date-time, inclusive (UTC without an offset); default: first of this month
    until     exclusive; default: now
    group_by  comma-separated: tenant, team, project, key, model, deployment, provider, endpoint,
              status, tag:<name>; default: tenant,model
    bucket    hour | day | month | none; default: day
    format    json | csv | focus; default: json
    tenant    comma-separated tenant names; default: every tenant the key may see
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_routes import credentials
from gateway.reports.aggregate import Bucket, build_report, parse_bucket, parse_group_by
from gateway.reports.focus import to_focus_csv
from gateway.reports.query import load_events
from gateway.reports.render import to_csv, to_json
from providers.errors import InvalidRequest, PermissionDenied

if TYPE_CHECKING:
    from gateway.runtime import Runtime

FORMATS = ("json", "csv", "focus")
_PARAMS = frozenset({"since", "until", "group_by", "bucket", "format", "tenant"})
DEFAULT_GROUP_BY = "tenant,model"
_UNENCODED_PLUS = re.compile(r"(T[0-9:.]+) (\d\d:?\d\d)$")
"""An unencoded `+02:00` offset arrives as ` 02:00` (a `+` in a query string is a space)."""


@dataclass(frozen=True, slots=True)
class ReportQuery:
    since: datetime
    until: datetime
    group_by: tuple[str, ...]
    bucket: Bucket
    format: str
    tenants: tuple[str, ...] | None
    """None: every tenant."""


def parse_report_query(params: QueryParams, now: datetime) -> ReportQuery:
    """Raises InvalidRequest naming the offending parameter."""
    for name in params:
        if name not in _PARAMS:
            raise InvalidRequest(f"Unknown parameter '{name}'; allowed: {', '.join(sorted(_PARAMS))}.", param=name)
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    since = _instant(params["since"], "since") if params.get("since") else month_start
    until = _instant(params["until"], "until") if params.get("until") else now.astimezone(UTC)
    if since >= until:
        raise InvalidRequest(
            f"'since' ({since.isoformat()}) must be before 'until' ({until.isoformat()}), which is exclusive.",
            param="since",
        )
    fmt = params.get("format") or "json"
    if fmt not in FORMATS:
        raise InvalidRequest(f"Unknown format '{fmt}'; allowed: {', '.join(FORMATS)}.", param="format")
    bucket = parse_bucket(params.get("bucket") or "day")
    if fmt == "focus" and bucket == "none":
        raise InvalidRequest("The FOCUS export needs bucket hour, day or month.", param="bucket")
    tenants = tuple(t.strip() for value in params.getlist("tenant") for t in value.split(",") if t.strip())
    return ReportQuery(
        since=since,
        until=until,
        group_by=parse_group_by(params.get("group_by") or DEFAULT_GROUP_BY),
        bucket=bucket,
        format=fmt,
        tenants=tenants or None,
    )


def cost_routes(runtime: Runtime) -> list[Route]:
    async def admin_costs(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        query = parse_report_query(request.query_params, datetime.now(UTC))
        return await _report(runtime, query)

    async def usage(request: Request) -> Response:
        principal = await runtime.authenticate(credentials(request))
        query = parse_report_query(request.query_params, datetime.now(UTC))
        if not principal.is_admin:
            others = sorted(set(query.tenants or ()) - {principal.tenant})
            if others:
                raise PermissionDenied(
                    f"This key may only read the usage of its own tenant, not of '{others[0]}'.", param="tenant"
                )
            query = replace(query, tenants=(principal.tenant,))
        return await _report(runtime, query)

    return [
        Route("/admin/v1/costs", admin_costs, methods=["GET"]),
        Route("/v1/usage", usage, methods=["GET"]),
    ]


def archive_dir(runtime: Runtime) -> Path:
    """Where `UsageArchive` writes: `ledger.archive_dir`, by default `<data_dir>/ledger`."""
    return runtime.archive_dir


async def _report(runtime: Runtime, query: ReportQuery) -> Response:
    events = await load_events(
        runtime.store.redis,
        archive_dir(runtime),
        since=query.since.timestamp(),
        until=query.until.timestamp(),
        tenants=query.tenants,
        postgres=runtime.archive_postgres,
    )
    # Summing a month of events is CPU work: off the event loop, which serves the hot path.
    body, media_type = await asyncio.to_thread(_render, events, query)
    headers = {"cache-control": "no-store"}
    if media_type.startswith("text/csv"):
        kind = "focus" if query.format == "focus" else "costs"
        headers["content-disposition"] = f'attachment; filename="{_filename(kind, query)}"'
    return Response(body, media_type=media_type, headers=headers)


def _render(events: Sequence[dict[str, Any]], query: ReportQuery) -> tuple[bytes, str]:
    if query.format == "focus":
        return to_focus_csv(events, bucket=query.bucket).encode(), "text/csv; charset=utf-8"
    report = build_report(events, group_by=query.group_by, bucket=query.bucket, since=query.since, until=query.until)
    if query.format == "csv":
        return to_csv(report).encode(), "text/csv; charset=utf-8"
    return orjson.dumps(to_json(report)), "application/json"


def _instant(value: str, param: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_UNENCODED_PLUS.sub(r"\1+\2", value.strip()))
    except ValueError:
        raise InvalidRequest(
            f"'{param}' must be an ISO 8601 date or date-time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z), "
            f"not '{value}'.",
            param=param,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _filename(kind: str, query: ReportQuery) -> str:
    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d" if moment.time() == datetime.min.time() else "%Y-%m-%dT%H%M%SZ")

    return f"switchyard-{kind}-{stamp(query.since)}-to-{stamp(query.until)}.csv"
