"""`switchyard` command line: serve, config check, keys, costs, route, models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli_costs import costs_app
from gateway.cli_keys import keys_app
from gateway.cli_route import route_app
from gateway.config import ConfigError, load_config
from gateway.settings import Settings
from local_runtime.cli import models_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Switchyard, an OpenAI-compatible AI gateway.")
config_app = typer.Typer(no_args_is_help=True, help="Validate configuration files.")
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(costs_app, name="costs")
app.add_typer(route_app, name="route")
app.add_typer(models_app, name="models")


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")],
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Start the gateway."""
    from gateway.app import create_app
    from gateway.server import serve as run_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_environ(config, host, port)
    try:
        loaded = load_config(settings.config_path, settings.env)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    server = loaded.server
    if server.workers > 1:
        from gateway.workers import serve_workers

        serve_workers(
            settings, loaded, host or server.host, server.port if port is None else port, server.workers, log_level
        )
        return
    run_server(
        create_app(settings, loaded),
        host or server.host,
        server.port if port is None else port,
        server.drain_grace,
        log_level,
    )


@config_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="YAML config file.")]) -> None:
    """Validate FILE; print each problem with its YAML path (exit 1 if any)."""
    settings = Settings.from_environ(file)
    try:
        config = load_config(settings.config_path, settings.env)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        typer.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(1) from None
    enabled = [n for n, p in config.providers.items() if p.enabled]
    typer.echo(f"{file}: OK ({len(config.models)} models, {len(enabled)} of {len(config.providers)} providers enabled)")


def main() -> None:
    app(prog_name="switchyard")


if __name__ == "__main__":
    main()
