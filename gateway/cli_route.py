"""`switchyard route explain` (through a running gateway's admin API) and `switchyard route simulate`."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_admin import DEFAULT_URL, AdminKey, Url, admin_call
from gateway.cli_route_simulate import simulate

route_app = typer.Typer(no_args_is_help=True, help="Routing: explain a decision, simulate a policy on past traffic.")
route_app.command("simulate")(simulate)


@route_app.command("explain")
def explain(
    model: Annotated[str, typer.Option(help="The logical model.")],
    prompt_tokens: Annotated[int, typer.Option(help="Prompt size to route.")] = 0,
    max_tokens: Annotated[int | None, typer.Option(help="Output bound (default: the ledger's).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Apply this tenant's routing rules and policy.")] = None,
    stream: Annotated[bool, typer.Option(help="A streaming request.")] = False,
    tools: Annotated[bool, typer.Option(help="The request uses tools.")] = False,
    vision: Annotated[bool, typer.Option(help="The request has images.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    url: Url = DEFAULT_URL,
    admin_key: AdminKey = None,
) -> None:
    """Every candidate with its eligibility, exclusion reason, score and rank."""
    body: dict[str, Any] = {"model": model, "prompt_tokens": prompt_tokens, "stream": stream}
    body.update(tools=tools, vision=vision)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tenant is not None:
        body["tenant"] = tenant
    data = admin_call("POST", url, admin_key, "/admin/v1/route/explain", json=body).json()
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    title = f"{data['model']}: policy {data['policy']} ({data['strategy']})" + (
        f", tenant {data['tenant']}" if data["tenant"] else ""
    )
    table = Table("rank", "deployment", "eligible", "score", "why / excluded because", "circuit", "est. $", title=title)
    for c in sorted(data["candidates"], key=lambda c: (c["rank"] is None, c["rank"] or 0, c["position"])):
        table.add_row(
            "-" if c["rank"] is None else str(c["rank"] + 1),
            c["deployment"],
            "yes" if c["eligible"] else "no",
            "-" if c["score"] is None else f"{c['score']:.4g}",
            c["excluded_because"] or c["why"],
            c["circuit"],
            f"{c['estimated_cost_usd']:.6f}",
        )
    Console().print(table)
    typer.echo(f"tried in order (at most {len(data['attempts'])}): {' -> '.join(data['attempts']) or 'none'}")
