"""What the admin CLI commands share: the gateway's URL and admin key, one request, errors as text."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import httpx
import typer

Url = Annotated[str, typer.Option(envvar="SWITCHYARD_URL", help="The gateway.")]
AdminKey = Annotated[str | None, typer.Option(envvar="SWITCHYARD_ADMIN_KEY", help="The admin key.", show_default=False)]
DEFAULT_URL = "http://127.0.0.1:8080"


def admin_call(
    method: str, url: str, admin_key: str | None, path: str, *, timeout: float = 30, **kwargs: Any
) -> httpx.Response:
    """One admin API request; exits 2 without a key, 1 on a transport error or an error answer."""
    if not admin_key:
        fail("an admin key is needed: pass --admin-key or set SWITCHYARD_ADMIN_KEY", code=2)
    endpoint = url.rstrip("/") + path
    try:
        response = httpx.request(
            method, endpoint, headers={"authorization": f"Bearer {admin_key}"}, timeout=timeout, **kwargs
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {endpoint}: {exc}")
    if response.status_code >= 400:
        fail(f"{error_message(response)} (HTTP {response.status_code})")
    return response


def error_message(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text.strip()[:500]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
