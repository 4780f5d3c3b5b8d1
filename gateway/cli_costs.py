"""`switchyard costs report`: a cost report from a running gateway's admin API."""

from __future__ import annotations

import enum
import io
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from gateway.cli_admin import DEFAULT_URL, AdminKey, Url, admin_call
from gateway.reports.render import from_json, to_table

costs_app = typer.Typer(no_args_is_help=True, help="Cost and usage reports from a running gateway.")


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    FOCUS = "focus"


@costs_app.command("report")
def report(
    since: Annotated[
        str | None,
        typer.Option(help="Start, inclusive: ISO date or date-time (UTC without offset). [default: 1st of this month]"),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End, exclusive.", show_default="now")] = None,
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by",
            help="Comma-separated: tenant, team, project, key, model, deployment, provider, endpoint, status,"
            " tag:<name>.",
        ),
    ] = "tenant,model",
    bucket: Annotated[str, typer.Option(help="hour, day, month or none.")] = "day",
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.TABLE,
    tenant: Annotated[str | None, typer.Option(help="Only these tenants (comma-separated).")] = None,
    url: Url = DEFAULT_URL,
    admin_key: AdminKey = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of the terminal.")
    ] = None,
) -> None:
    """Print a cost report: the table ends with a TOTAL line; csv, json and focus are the API's own bytes."""
    params = {"group_by": group_by, "bucket": bucket}
    params["format"] = "json" if output_format in (OutputFormat.TABLE, OutputFormat.JSON) else output_format.value
    for name, value in (("since", since), ("until", until), ("tenant", tenant)):
        if value:
            params[name] = value
    response = admin_call("GET", url, admin_key, "/admin/v1/costs", params=params, timeout=300)
    if output_format is OutputFormat.TABLE:
        table = to_table(from_json(response.json()))
        if output is None:
            Console().print(table)
        else:
            text = io.StringIO()
            Console(file=text, width=240, color_system=None).print(table)
            output.write_text(text.getvalue())
        return
    content = response.content
    if output_format is OutputFormat.JSON:
        content = orjson.dumps(response.json(), option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    else:
        output.write_bytes(content)
