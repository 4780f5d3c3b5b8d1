"""Medians over repeats, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

Metrics = dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


# Memory figures take the maximum over repeats: a process reuses the heap it grew in the first run.
_MAX_KEYS = {"kb_per_stream", "rss_open_mb", "peak_rss_mb"}


def median_metrics(runs: list[Metrics]) -> Metrics:
    """Median of every numeric figure over runs; errors are also summed, so one bad run stays visible."""
    keys = [k for k in runs[0] if _number(runs[0][k]) is not None or runs[0][k] is None]
    out: Metrics = {}
    for key in keys:
        values = [v for r in runs if (v := _number(r.get(key))) is not None]
        if not values:
            out[key] = None
        else:
            out[key] = max(values) if key in _MAX_KEYS else statistics.median(values)
    out["errors_all_runs"] = sum(int(r.get("errors", 0)) for r in runs)
    if any("all_open" in r for r in runs):
        out["all_open"] = all(r.get("all_open", False) for r in runs)
    return out


def compare(base: Metrics, other: Metrics, suffix: str = "") -> Metrics:
    """other minus base for the latencies; with suffix (vs the relay) also other / base for the CPU."""

    def delta(key: str) -> float | None:
        b, o = _number(base.get(key)), _number(other.get(key))
        return None if b is None or o is None else o - b

    def ratio(key: str) -> float | None:
        b, o = _number(base.get(key)), _number(other.get(key))
        return None if b is None or o is None or b <= 0 else o / b

    out = {
        f"added_p50{suffix}_ms": delta("p50_ms"),
        f"added_p99{suffix}_ms": delta("p99_ms"),
        f"added_ttft_p50{suffix}_ms": delta("ttft_p50_ms"),
    }
    if suffix:
        out[f"cpu_ratio{suffix}"] = ratio("cpu_ms_per_req")
        out[f"tree_cpu_ratio{suffix}"] = ratio("tree_cpu_ms_per_req")
        out[f"rps_ratio{suffix}"] = ratio("rps")
    return out


# (target row, baseline, key suffix): the relay and the gateway over direct, the gateway over the relay.
_COMPARISONS = (
    ("relay", "direct", ""),
    ("gateway", "direct", ""),
    ("gateway", "relay", "_over_relay"),
    ("gateway+acct", "direct", ""),
    ("gateway+acct", "relay", "_over_relay"),
    ("gateway+acct", "gateway", "_over_gateway"),
    ("gateway-py", "direct", ""),
    ("gateway-py", "relay", "_over_relay"),
    ("gateway", "gateway-py", "_over_py"),
)
"""`gateway+acct` (--accounting): the gateway with budgets and rate limits on, against the plain gateway.
`gateway-py` (--interpreted): the gateway with its compiled modules off; `gateway` is compared with it."""


def summarize(sets: list[dict[str, Metrics]]) -> dict[str, Metrics]:
    """sets: one {"direct": ..., "relay": ..., "gateway": ...} per repeat; relay and gateway may be absent.

    Differences and ratios are taken within each repeat (same minute, same machine load), then the median.
    """
    summary = {target: median_metrics([s[target] for s in sets]) for target in sets[0]}
    for target, base, suffix in _COMPARISONS:
        if target in sets[0] and base in sets[0]:
            compared = median_metrics([compare(s[base], s[target], suffix) for s in sets])
            del compared["errors_all_runs"]
            summary[target].update(compared)
    return summary


_COLUMNS: list[tuple[str, str, str]] = [
    # (header, metrics key, format)
    ("req/s", "rps", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("TTFT p50", "ttft_p50_ms", "{:.2f}"),
    ("errors", "errors_all_runs", "{:d}"),
    ("+p50 ms", "added_p50_ms", "{:+.2f}"),
    ("+TTFT ms", "added_ttft_p50_ms", "{:+.2f}"),
    ("+p50 vs relay", "added_p50_over_relay_ms", "{:+.2f}"),
    ("+TTFT vs relay", "added_ttft_p50_over_relay_ms", "{:+.2f}"),
    ("CPU ms/req", "cpu_ms_per_req", "{:.3f}"),
    ("+children", "tree_cpu_ms_per_req", "{:.3f}"),
    ("CPU/relay", "cpu_ratio_over_relay", "{:.2f}x"),
    ("req/s vs gw", "rps_ratio_over_gateway", "{:.2f}x"),
    ("CPU vs gw", "tree_cpu_ratio_over_gateway", "{:.2f}x"),
    ("CPU vs py", "cpu_ratio_over_py", "{:.2f}x"),
    ("peak RSS MB", "peak_rss_mb", "{:.1f}"),
    ("KB/stream", "kb_per_stream", "{:.1f}"),
]


def _cell(metrics: Metrics, key: str, fmt: str) -> str:
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if fmt == "{:d}":
        value = int(value)
    return fmt.format(value)


def table(summaries: dict[str, dict[str, Metrics]]) -> str:
    header = ["scenario", "target", *(c[0] for c in _COLUMNS)]
    rows = [header]
    for scenario, by_target in summaries.items():
        for target, metrics in by_target.items():
            rows.append([scenario, target, *(_cell(metrics, key, fmt) for _, key, fmt in _COLUMNS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


LEGEND = """\
Latencies: wrk's for non-streaming; whole-stream time for streams, TTFT = time to the first `data:` bytes.
errors: summed over repeats. +p50/+TTFT: relay or gateway minus direct; "vs relay": gateway minus relay;
  each taken per repeat, then the median.
CPU ms/req: utime+stime of the measured process during the run / completed requests (direct rows: the
  fake upstream; relay/gateway rows: that process); +children adds its child processes (the embedded Redis).
CPU/relay: gateway CPU ms/req / relay CPU ms/req, per repeat, median: the cost of the gateway's features
  over the bare stack. peak RSS: VmHWM of that process.
KB/stream: (RSS with all streams open - RSS before) / streams. Memory figures: the maximum over repeats.
gateway+acct (--accounting): tenant budget, rpm and tpm on (admission from leases, one Redis script
  call per lease, ledger settlement after each request); "vs gw" columns divide it by the plain gateway of
  the same repeat (CPU with children, since Redis does part of the work).
gateway-py (--interpreted): the gateway with SWITCHYARD_NATIVE=0, every module interpreted; "CPU vs py"
  divides the gateway's CPU (compiled modules in use when built) by it, within each repeat.
"""


# Issue #2's targets for the whole gateway, and what its table measured for the bare stack (raw ASGI +
# aiohttp, the relay here) on the machine the targets were set on: (label, scenario, key, target, bare);
# no bare figure, no scaling.
ISSUE_TARGETS = (
    ("CPU per request", "nonstream-c32", "cpu_ms_per_req", 0.25, 0.11),
    ("added p50 at c1", "nonstream-c1", "added_p50_ms", 0.4, 0.23),
    ("added TTFT at 64 streams", "stream-c64", "added_ttft_p50_ms", 2.0, None),
    ("CPU per 20-chunk stream", "stream-c64", "cpu_ms_per_req", 0.8, 0.55),
    ("KB per open stream", "streams-1000", "kb_per_stream", 40.0, None),  # memory: not scaled
)


def verdicts(summaries: dict[str, dict[str, Metrics]]) -> list[str]:
    """Each issue target against the gateway's median, and against the target scaled by this host's speed.

    The targets are absolute figures from a host where the bare stack measured `bare`; the relay is that
    stack here. `scaled` = target x (relay here / bare there): what the target asks of this host. Memory
    is not scaled (it does not depend on the host's speed), nor is TTFT (the issue gives no bare figure)."""
    lines = []
    for label, scenario, key, target, bare in ISSUE_TARGETS:
        rows = summaries.get(scenario, {})
        gateway, relay = _number(rows.get("gateway", {}).get(key)), _number(rows.get("relay", {}).get(key))
        if gateway is None:
            continue
        line = f"{label} ({scenario}): gateway {gateway:.3f}, target {target:g}: {_met(gateway <= target)}"
        if relay is not None:
            line += f"; relay {relay:.3f}"
            if bare is not None and relay > 0:
                scaled = target * relay / bare
                line += f", target scaled to this host {scaled:.3f}: {_met(gateway <= scaled)}"
        if key == "kb_per_stream":
            line += f"; 1,000 streams all open: {_met(bool(rows['gateway'].get('all_open')))}"
            line += f", errors {int(rows['gateway'].get('errors_all_runs', 0))}"
        lines.append(line)
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
