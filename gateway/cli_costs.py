"""`switchyard costs report`: a cost report from a running gateway's admin API."""

from __future__ import annotations

import enum
import io
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import orjson
import typer
from rich.console import Console

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
    url: Annotated[str, typer.Option(envvar="SWITCHYARD_URL", help="The gateway.")] = "http://127.0.0.1:8080",
    admin_key: Annotated[
        str | None, typer.Option(envvar="SWITCHYARD_ADMIN_KEY", help="The admin key.", show_default=False)
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of the terminal.")
    ] = None,
) -> None:
    """Print a cost report: the table ends with a TOTAL line; csv, json and focus are the API's own bytes."""
    if not admin_key:
        _fail("an admin key is needed: pass --admin-key or set SWITCHYARD_ADMIN_KEY", code=2)
    params = {"group_by": group_by, "bucket": bucket}
    params["format"] = "json" if output_format in (OutputFormat.TABLE, OutputFormat.JSON) else output_format.value
    for name, value in (("since", since), ("until", until), ("tenant", tenant)):
        if value:
            params[name] = value
    endpoint = url.rstrip("/") + "/admin/v1/costs"
    try:
        response = httpx.get(endpoint, params=params, headers={"authorization": f"Bearer {admin_key}"}, timeout=300)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {endpoint}: {exc}")
    if response.status_code >= 400:
        _fail(f"{_error_message(response)} (HTTP {response.status_code})")
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


def _error_message(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text.strip()[:500]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
