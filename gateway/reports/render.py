"""A `Report` as JSON, CSV (RFC 4180) or a terminal table with a TOTAL line."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.table import Table

from gateway.reports.aggregate import (
    USAGE_FIELDS,
    GroupValue,
    Report,
    ReportRow,
    Usage,
    iso,
    parse_bucket,
    parse_group_by,
    usd,
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def usage_dict(usage: Usage) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(usage, name) for name in USAGE_FIELDS}
    data["cost_usd"] = usd(usage.cost_micro_usd)
    data["list_cost_usd"] = usd(usage.list_cost_micro_usd)
    return data


def row_dict(report: Report, row: ReportRow) -> dict[str, Any]:
    data: dict[str, Any] = dict(zip(report.group_by, row.group, strict=True))
    if report.bucket != "none":
        assert row.period_start is not None and row.period_end is not None
        data["period_start"] = iso(row.period_start)
        data["period_end"] = iso(row.period_end)
    data.update(usage_dict(row.usage))
    return data


def to_json(report: Report) -> dict[str, Any]:
    return {
        "object": "usage_report",
        "since": iso(report.since) if report.since else None,
        "until": iso(report.until) if report.until else None,
        "group_by": list(report.group_by),
        "bucket": report.bucket,
        "currency": "USD",
        "rows": [row_dict(report, row) for row in report.rows],
        "totals": usage_dict(report.totals),
    }


def from_json(data: Mapping[str, Any]) -> Report:
    """The inverse of `to_json` (the CLI renders the API's JSON as a table). Raises KeyError/ValueError."""
    group_by = parse_group_by(data["group_by"])
    bucket = parse_bucket(data["bucket"])
    rows = []
    for row in data["rows"]:
        start = row.get("period_start")
        end = row.get("period_end")
        rows.append(
            ReportRow(
                tuple(_group_value(row.get(name)) for name in group_by),
                _instant(start) if start else None,
                _instant(end) if end else None,
                _usage(row),
            )
        )
    since, until = data.get("since"), data.get("until")
    return Report(
        group_by,
        bucket,
        _instant(since) if since else None,
        _instant(until) if until else None,
        tuple(rows),
        _usage(data["totals"]),
    )


def csv_header(report: Report) -> list[str]:
    period = ["period_start", "period_end"] if report.bucket != "none" else []
    return [*report.group_by, *period, *USAGE_FIELDS, "cost_usd", "list_cost_usd"]


def to_csv(report: Report) -> str:
    """A header line, then one line per row (no totals line: a sum of the column gives it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = csv_header(report)
    groups = set(report.group_by)
    writer.writerow(header)
    for row in report.rows:
        data = row_dict(report, row)
        writer.writerow([spreadsheet_safe(data[name]) if name in groups else _cell(data[name]) for name in header])
    return out.getvalue()


def spreadsheet_safe(value: Any) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection): tag values and
    names come from clients."""
    text = _cell(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_table(report: Report) -> Table:
    """A rich table of the main columns, with a TOTAL line."""
    table = Table(show_edge=False, header_style="bold")
    labels = [*report.group_by, *(["period"] if report.bucket != "none" else [])] or [""]
    for label in labels:
        table.add_column(label)
    numbers = ["requests", "errors", "estimated", "prompt", "completion", "cached", "cost USD", "list USD"]
    for label in numbers:
        table.add_column(label, justify="right")
    for row in report.rows:
        cells = ["" if value is None else value for value in row.group]
        if report.bucket != "none":
            assert row.period_start is not None
            cells.append(_period_label(row.period_start, report))
        table.add_row(*(cells or ["all"]), *_numbers(row.usage))
    table.add_section()
    table.add_row("TOTAL", *[""] * (len(labels) - 1), *_numbers(report.totals), style="bold")
    return table


def _numbers(usage: Usage) -> list[str]:
    counts = [
        usage.requests,
        usage.errors,
        usage.estimated_requests,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
    ]
    return [f"{n:,}" for n in counts] + [usd(usage.cost_micro_usd), usd(usage.list_cost_micro_usd)]


def _period_label(start: datetime, report: Report) -> str:
    if report.bucket == "hour":
        return start.strftime("%Y-%m-%d %H:00")
    if report.bucket == "day":
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _group_value(value: Any) -> GroupValue:
    return None if value is None else str(value)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _usage(data: Mapping[str, Any]) -> Usage:
    return Usage(**{name: int(data.get(name) or 0) for name in USAGE_FIELDS})
