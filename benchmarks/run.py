"""Benchmark the gateway against the same load sent directly to a fake upstream and via a bare relay.

    python -m benchmarks.run [--quick] [--scenarios ...] [--repeat N] [--direct-only] [--no-relay]

Starts the fake upstream, the bare relay (benchmarks/bare_relay.py) and the gateway as subprocesses, runs
each scenario against the upstream directly, through the relay and through the gateway, prints a table
and writes benchmarks/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.scenarios import OPEN_STREAMS, RUNNERS, SCENARIOS, Target, smoke_test, warm_up
from benchmarks.services import (
    FAST_UPSTREAM_MODEL,
    GATEWAY_KEY,
    REPO_ROOT,
    SLOW_UPSTREAM_MODEL,
    UPSTREAM_KEY,
    Service,
    free_port,
    gateway_config,
)
from benchmarks.wrk_load import wrk_version


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and the services it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter runs (3-4 s per load instead of 10 s)")
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="NAME")
    p.add_argument(
        "--repeat", type=int, default=1, help="run each direct/relay/gateway set N times, report medians"
    )
    p.add_argument(
        "--direct-only", action="store_true", help="no relay, no gateway: measure the upstream only"
    )
    p.add_argument("--no-relay", action="store_true", help="do not start the bare relay")
    p.add_argument(
        "--accounting",
        action="store_true",
        help="also run a gateway with a tenant budget and rpm/tpm limits on (target gateway+acct)",
    )
    p.add_argument(
        "--interpreted",
        action="store_true",
        help="also run the gateway with SWITCHYARD_NATIVE=0 (target gateway-py: no compiled modules)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the temp dir with the services' logs")
    p.add_argument("--results-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        p.error("--repeat must be between 1 and 20")
    return args


def start_proxies(args: argparse.Namespace, tmp: Path, up_port: int, services: list[Service]) -> list[Target]:
    """Start the bare relay and the gateway (unless skipped); their targets, in that order."""
    targets: list[Target] = []
    if args.direct_only:
        return targets
    if not args.no_relay:
        port = free_port()
        argv = [sys.executable, "-m", "benchmarks.bare_relay", "--port", str(port)]
        relay = Service("relay", [*argv, "--upstream", f"http://127.0.0.1:{up_port}/v1"], tmp / "relay.log")
        services.append(relay)
        relay.start()
        relay.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        targets.append(Target("relay", url, GATEWAY_KEY, "bench", "bench-slow", relay))
    variants = [("gateway", False, None)]
    if args.interpreted:
        variants.append(("gateway-py", False, {"SWITCHYARD_NATIVE": "0"}))
    if args.accounting:
        variants.append(("gateway+acct", True, None))
    for name, accounting, env in variants:
        port = free_port()
        slug = name.replace("+", "-")
        config = tmp / f"{slug}.yaml"
        config.write_text(gateway_config(tmp / f"data-{slug}", up_port, accounting))
        argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
        gateway = Service(name, [*argv, "--host", "127.0.0.1", "--port", str(port)], tmp / f"{slug}.log", env)
        services.append(gateway)
        gateway.start()
        gateway.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        gateway.adopt_descendants()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        targets.append(Target(name, url, GATEWAY_KEY, "bench", "bench-slow", gateway))
    return targets


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    nofile = raise_nofile_limit()
    if nofile < 2 * OPEN_STREAMS + 200 and "streams-1000" in args.scenarios:
        print(f"warning: RLIMIT_NOFILE is {nofile}; streams-1000 will likely fail", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    services: list[Service] = []
    ok = False
    try:
        up_port = free_port()
        upstream = Service(
            "fake upstream",
            [sys.executable, "-m", "benchmarks.fake_upstream", "--port", str(up_port)],
            tmp / "up.log",
        )
        services.append(upstream)
        upstream.start()
        upstream.wait_http(f"http://127.0.0.1:{up_port}/v1/models", timeout=15)
        up_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        targets = [Target("direct", up_url, UPSTREAM_KEY, FAST_UPSTREAM_MODEL, SLOW_UPSTREAM_MODEL, upstream)]
        targets += start_proxies(args, tmp, up_port, services)

        for target in targets:
            smoke_test(target)
            warm_up(target)

        started = datetime.now(UTC)
        load_before = os.getloadavg()
        runs: dict[str, list[dict[str, Any]]] = {}
        summaries: dict[str, dict[str, Any]] = {}
        for name in args.scenarios:
            runs[name] = []
            for i in range(args.repeat):
                measured: dict[str, dict[str, Any]] = {}
                # Rotate the order between repeats so a drift in machine load does not favour one target.
                shift = i % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    t0 = time.monotonic()
                    m = measured[target.name] = RUNNERS[name](target, upstream, args.quick)
                    print(
                        f"{name} #{i + 1} {target.name}: {m['rps']:.0f} req/s, p50 {m['p50_ms']:.2f} ms, "
                        f"errors {m['errors']} ({time.monotonic() - t0:.1f}s)",
                        file=sys.stderr,
                        flush=True,
                    )
                runs[name].append({t.name: measured[t.name] for t in targets})
            summaries[name] = report.summarize(runs[name])

        print()
        print(report.table(summaries))
        print()
        print(report.LEGEND)
        if lines := report.verdicts(summaries):
            print("Issue #2's targets (medians; a scaled target = target x relay here / bare stack there):")
            print("\n".join(f"  {line}" for line in lines))
            print()
        out = args.results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        report.write_json(
            out,
            _json_safe(
                {
                    "meta": {
                        "started": started.isoformat(),
                        "argv": sys.argv[1:] if argv is None else argv,
                        "quick": args.quick,
                        "repeat": args.repeat,
                        "direct_only": args.direct_only,
                        "targets": [t.name for t in targets],
                        "cpus": os.cpu_count(),
                        "loadavg_before": load_before,
                        "loadavg_after": os.getloadavg(),
                        "python": platform.python_version(),
                        "wrk": wrk_version(),
                        "git": git_revision(),
                    },
                    "summary": summaries,
                    "runs": runs,
                }
            ),
        )
        print(f"results: {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
        ok = True
        return 0
    except (KeyboardInterrupt, SystemExit):
        print("benchmark interrupted; stopping the services", file=sys.stderr)
        raise
    except Exception as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        for service in services[1:]:  # the relay and the gateway
            print(
                f"--- {service.name} log tail ({service.log_path}) ---\n{service.log_tail()}", file=sys.stderr
            )
        return 1
    finally:
        for service in reversed(services):
            service.stop()
        if ok and not args.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", file=sys.stderr)


def _json_safe(value: Any) -> Any:
    """NaN (e.g. no successful stream) is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
