"""`switchyard route simulate`: replay recorded usage events through a candidate config (`gateway.route_simulation`)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import orjson
import typer
from rich.console import Console
from rich.table import Table

from gateway.archive.jsonl import UNREADABLE_DIR
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.route_simulation import (
    MIN_SAMPLES,
    ModelReplay,
    Outcome,
    SimulationReport,
    Traffic,
    collect_traffic,
    replay,
)
from gateway.settings import Settings
from gateway.state import build_state


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


def simulate(
    policy: Annotated[
        Path,
        typer.Option(
            "--policy", "-p", metavar="FILE", help="The candidate: a full gateway config (YAML).", dir_okay=False
        ),
    ],
    traffic: Annotated[
        list[Path],
        typer.Option(
            "--traffic",
            "-t",
            metavar="PATH",
            help="Usage events, one JSON object a line: a file, or a directory searched for *.jsonl"
            " (e.g. <data_dir>/ledger). Repeatable.",
        ),
    ],
    seed: Annotated[int, typer.Option(help="Seed of the random draws some strategies make.")] = 0,
    min_samples: Annotated[
        int,
        typer.Option(min=1, help="Latencies a deployment needs in the traffic before requests moved to it get one."),
    ] = MIN_SAMPLES,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.TABLE,
) -> None:
    """Replay recorded traffic through the routing of --policy: cost, latency and deployment shares per
    model, as they were and as the candidate would have made them."""
    settings = Settings.from_environ(policy)
    try:
        config = load_config(settings.config_path, settings.env)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    try:
        events = collect_traffic(_records(_traffic_files(traffic)))
    except OSError as exc:
        typer.echo(f"cannot read the traffic: {exc}", err=True)
        raise typer.Exit(1) from None
    report = asyncio.run(_replay(config, events, seed, min_samples))
    if output_format is OutputFormat.JSON:
        typer.echo(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode())
        return
    console = Console()
    for model in report.models:
        console.print(model_table(model))
    typer.echo(summary_line(report))


async def _replay(config: GatewayConfig, traffic: Traffic, seed: int, min_samples: int) -> SimulationReport:
    # Providers only connect when used, and the replay never calls one: the session stays idle.
    async with aiohttp.ClientSession() as session:
        state = build_state(config, session)
        try:
            return replay(state, traffic, seed=seed, min_samples=min_samples)
        finally:
            await state.aclose()


def _traffic_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each file as given; each directory's *.jsonl below it, in name order, except the archive's
    `unreadable/` entries (they are not events). Raises OSError for a path that does not exist."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.jsonl")):
                if UNREADABLE_DIR not in found.relative_to(path).parts[:-1] and found.is_file():
                    yield found
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")


def _records(files: Iterable[Path]) -> Iterator[object]:
    """One decoded value per non-blank line; None for a line that is not JSON (a torn write)."""
    for path in files:
        with path.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield None


def _usd(micro: int) -> float:
    return round(micro / 1_000_000, 6)


def _rounded_ms(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "cost_usd": _usd(outcome.cost_micro_usd),
        "p50_ms": _rounded_ms(outcome.p50_ms),
        "p95_ms": _rounded_ms(outcome.p95_ms),
        "latency_requests": outcome.latency_requests,
        "deployments": {s.deployment: {"requests": s.requests, "share": round(s.share, 4)} for s in outcome.shares},
    }


def report_json(report: SimulationReport) -> dict[str, Any]:
    models = []
    for m in report.models:
        simulated = _outcome_json(m.simulated)
        simulated.update(unroutable=m.unroutable, unpriced=m.unpriced, latency_unknown=m.latency_unknown)
        pct = m.cost_delta_pct
        models.append(
            {
                "model": m.model,
                "policy": m.policy,
                "strategy": m.strategy,
                "requests": m.requests,
                "actual": _outcome_json(m.actual),
                "simulated": simulated,
                "delta": {
                    "cost_usd": _usd(m.cost_delta_micro_usd),
                    "cost_pct": round(pct, 2) if pct is not None else None,
                    "p50_ms": _rounded_ms(m.p50_delta_ms),
                    "p95_ms": _rounded_ms(m.p95_delta_ms),
                },
            }
        )
    return {
        "models": models,
        "replayed": report.replayed,
        "skipped": {"requests": report.skipped_requests, "models": dict(report.skipped)},
        "malformed": report.malformed,
        "duplicates": report.duplicates,
        "seed": report.seed,
    }


def _ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.0f} ms"


def _signed_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.0f} ms"


def _shares(outcome: Outcome) -> str:
    return "\n".join(f"{s.deployment} {s.share:.0%}" for s in outcome.shares) or "-"


def model_table(m: ModelReplay) -> Table:
    table = Table(
        "", "actual", "simulated", "change",
        title=f"{m.model}: {m.requests} requests, policy {m.policy} ({m.strategy})",
    )  # fmt: skip
    pct = m.cost_delta_pct
    cost_change = f"{m.cost_delta_micro_usd / 1_000_000:+,.6f} USD" + (f" ({pct:+.1f}%)" if pct is not None else "")
    table.add_row(
        "cost",
        f"{m.actual.cost_micro_usd / 1_000_000:,.6f} USD",
        f"{m.simulated.cost_micro_usd / 1_000_000:,.6f} USD",
        cost_change,
    )
    table.add_row("p50 latency", _ms(m.actual.p50_ms), _ms(m.simulated.p50_ms), _signed_ms(m.p50_delta_ms))
    table.add_row("p95 latency", _ms(m.actual.p95_ms), _ms(m.simulated.p95_ms), _signed_ms(m.p95_delta_ms))
    table.add_row(
        "latency from", f"{m.actual.latency_requests} requests", f"{m.simulated.latency_requests} requests", ""
    )
    table.add_row("deployments", _shares(m.actual), _shares(m.simulated), "")
    notes = [
        f"{n} {label}"
        for n, label in (
            (m.latency_unknown, "moved to a deployment with too few latencies (unknown)"),
            (m.unroutable, "with no eligible deployment (not counted)"),
            (m.unpriced, "on a deployment with no price (cost 0)"),
        )
        if n
    ]
    if notes:
        table.caption = "; ".join(notes)
    return table


def summary_line(report: SimulationReport) -> str:
    parts = [f"{report.replayed} requests replayed in {len(report.models)} model(s) (seed {report.seed})"]
    if report.skipped:
        models = ", ".join(f"{name} ({n})" for name, n in report.skipped)
        parts.append(f"{report.skipped_requests} skipped, for models the candidate does not offer: {models}")
    if report.malformed:
        parts.append(f"{report.malformed} malformed lines ignored")
    if report.duplicates:
        parts.append(f"{report.duplicates} duplicate events ignored")
    return "; ".join(parts)
