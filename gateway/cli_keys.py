"""`switchyard keys create|list|show|rotate|revoke`, through a running gateway's admin API."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from gateway.cli_admin import DEFAULT_URL, AdminKey, Url, admin_call

keys_app = typer.Typer(no_args_is_help=True, help="Virtual API keys: the secret is shown once, at creation.")


def _print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _limit(rpm: int | None, tpm: int | None) -> dict[str, int] | None:
    limit = {k: v for k, v in (("rpm", rpm), ("tpm", tpm)) if v is not None}
    return limit or None


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key bills to.")],
    team: Annotated[str | None, typer.Option(help="Team within the tenant.")] = None,
    project: Annotated[str | None, typer.Option(help="Project, for attribution.")] = None,
    name: Annotated[str | None, typer.Option(help="A label for people.")] = None,
    budget: Annotated[list[str] | None, typer.Option(help="e.g. 500/month, 20/day, 1000/total (repeatable).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute for this key.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute for this key.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="e.g. 720h; default: never.")] = None,
    url: Url = DEFAULT_URL,
    admin_key: AdminKey = None,
) -> None:
    """Create a key and print it once with its id."""
    body: dict[str, Any] = {"tenant": tenant, "team": team, "project": project, "name": name}
    body["budget"] = budget or []
    body["rate_limit"] = _limit(rpm, tpm)
    if expires_in:
        body["expires_in"] = expires_in
    created = admin_call("POST", url, admin_key, "/admin/v1/keys", json=body).json()
    typer.echo(f"key:    {created['key']}")
    typer.echo(f"id:     {created['id']}  (tenant {created['tenant']})")
    typer.echo("Store the key now: it is not shown again.", err=True)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: Url = DEFAULT_URL,
    admin_key: AdminKey = None,
) -> None:
    """List keys (never their secrets)."""
    params = {"tenant": tenant} if tenant else {}
    data = admin_call("GET", url, admin_key, "/admin/v1/keys", params=params).json()["data"]
    if as_json:
        _print_json(data)
        return
    table = Table("id", "tenant", "team", "project", "name", "status", "budget", "rate limit")
    for key in data:
        budgets = ", ".join(f"${b['usd']:g}/{b['period']}" for b in key["budget"]) or "-"
        limit = key["rate_limit"] or {}
        limits = ", ".join(f"{v} {k}" for k, v in limit.items() if v) or "-"
        table.add_row(
            key["id"], key["tenant"], key["team"] or "-", key["project"] or "-", key["name"] or "-",
            key["status"], budgets, limits,
        )  # fmt: skip
    Console().print(table)


@keys_app.command("show")
def show(key_id: str, url: Url = DEFAULT_URL, admin_key: AdminKey = None) -> None:
    """One key's record."""
    _print_json(admin_call("GET", url, admin_key, f"/admin/v1/keys/{key_id}").json())


@keys_app.command("rotate")
def rotate(
    key_id: str,
    grace: Annotated[str | None, typer.Option(help="How long the old secret keeps working, e.g. 1h.")] = None,
    url: Url = DEFAULT_URL,
    admin_key: AdminKey = None,
) -> None:
    """A new secret with the same tenant, budgets and limits; the old one stops (after --grace)."""
    body = {"grace": grace} if grace else {}
    rotated = admin_call("POST", url, admin_key, f"/admin/v1/keys/{key_id}/rotate", json=body).json()
    typer.echo(f"key:    {rotated['key']}")
    typer.echo(f"id:     {rotated['id']}  (replaces {rotated['replaces']['id']})")


@keys_app.command("revoke")
def revoke(key_id: str, url: Url = DEFAULT_URL, admin_key: AdminKey = None) -> None:
    """Revoke at once, on every replica."""
    revoked = admin_call("DELETE", url, admin_key, f"/admin/v1/keys/{key_id}").json()
    typer.echo(f"{revoked['id']}: {revoked['status']}")
