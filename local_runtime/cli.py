"""`switchyard models import|list`: build real ONNX models offline and inspect a model repository.

The gateway mounts `models_app` as `switchyard models`; it runs on its own as well:
`python -m local_runtime.cli import iris --repository models`.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

models_app = typer.Typer(no_args_is_help=True, help="Local ONNX models: import real models offline, list them.")

Repository = Annotated[Path, typer.Option("--repository", "-r", help="The model repository directory.")]


class Source(StrEnum):
    iris = "iris"
    minilm = "minilm"


@models_app.command("import")
def import_command(
    source: Annotated[Source, typer.Argument(help="iris: scikit-learn classifier; minilm: all-MiniLM-L6-v2.")],
    repository: Repository = Path("models"),
    name: Annotated[str | None, typer.Option(help="Model name (iris-classifier / all-minilm-l6-v2).")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="minilm: a sentence-transformers model directory or zip to read.")
    ] = None,
    max_batch_size: Annotated[int | None, typer.Option(min=1, help="Written to model.yaml.")] = None,
) -> None:
    """Build a model from files already on disk and add it as the next version in the repository."""
    from local_runtime.importers import ImportFailed, import_model

    if weights is not None and source is not Source.minilm:
        raise typer.BadParameter("--weights is for minilm only", param_hint="--weights")
    try:
        imported = import_model(source.value, repository, name=name, weights=weights, max_batch_size=max_batch_size)
    except ImportFailed as exc:
        typer.echo(f"cannot import {source.value}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"imported {imported.name} version {imported.version} into {imported.path}")


@models_app.command("list")
def list_command(
    repository: Repository = Path("models"),
    load: Annotated[bool, typer.Option(help="Load each model to show its state and execution provider.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each model, its versions, its state and the execution provider in use."""
    rows = asyncio.run(_loaded_rows(repository)) if load else _scanned_rows(repository)
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if not rows:
        typer.echo(f"no models under {repository}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("model", "kind", "versions", "serving", "state", "execution provider"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            row["kind"] or "-",
            ", ".join(str(v) for v in row["versions"]) or "-",
            str(row["serving_version"] or "-"),
            row["state"],
            row["execution_provider"] or "-",
        )
    Console().print(table)
    for row in rows:  # errors are long: below the table, not in a column
        if row["error"]:
            typer.echo(f"{row['name']}: {row['error']}")
        if row.get("execution_fallback"):
            typer.echo(f"{row['name']}: execution provider fallback: {row['execution_fallback']}")


def _scanned_rows(repository: Path) -> list[dict[str, Any]]:
    from local_runtime.repository import scan_repository

    return [
        {
            "name": entry.name,
            "kind": entry.spec.kind if entry.spec else None,
            "versions": list(entry.versions),
            "serving_version": None,
            "state": "INVALID" if entry.error else "NOT LOADED",
            "execution_provider": None,
            "error": entry.error,
        }
        for entry in scan_repository(repository)
    ]


async def _loaded_rows(repository: Path) -> list[dict[str, Any]]:
    from local_runtime.model_manager import ModelManager

    logger = logging.getLogger("switchyard.local_runtime")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # failures are in the table; no log lines on top of it
    manager = ModelManager(repository)
    try:
        await manager.start()
        return [status.to_dict() for status in manager.status()]
    finally:
        await manager.aclose()
        logger.setLevel(level)


if __name__ == "__main__":
    models_app()
