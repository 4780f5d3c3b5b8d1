"""Cost and usage reports: load events (`query`), sum them (`aggregate`), print them (`render`, `focus`)."""

from gateway.reports.aggregate import BUCKETS, GROUP_FIELDS, Report, ReportRow, Usage, build_report
from gateway.reports.focus import focus_rows, to_focus_csv
from gateway.reports.query import load_events
from gateway.reports.render import from_json, to_csv, to_json, to_table

__all__ = [
    "BUCKETS",
    "GROUP_FIELDS",
    "Report",
    "ReportRow",
    "Usage",
    "build_report",
    "focus_rows",
    "from_json",
    "load_events",
    "to_csv",
    "to_focus_csv",
    "to_json",
    "to_table",
]
