"""CPU instructions per request, in-process, counted by valgrind: C code included, host noise excluded.

`opcount` counts Python bytecodes only; this counts every instruction the process runs (the interpreter,
orjson, pydantic-core, uvloop, aiohttp's C parser...) with callgrind. Each target runs twice under
valgrind, serving `--base` and then `--base + --requests` requests after the same warm-up; the
difference divided by `--requests` is the cost of a request, start-up and warm-up cancelled out. The
process is the gateway's ASGI app driven in-process as in `opcount` (no uvicorn, no sockets to the
client; the fake upstream runs natively in its own process). Needs valgrind (`benchmarks/setup.sh`).
Each run takes about a minute: valgrind runs the program ~50x slower.

    python -m benchmarks.instructions            # non-streaming, gateway and bare relay, ~4 min
    python -m benchmarks.instructions --stream   # 20-chunk streams (timing-dependent under valgrind)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import uvloop

from benchmarks.opcount import App, fake_upstream, gateway_app, quiet_stderr, serve_load
from benchmarks.services import REPO_ROOT

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_WARM = 400
_CONCURRENCY = 8


def _child(target: str, requests: int, port: int, stream: bool) -> None:
    """Inside valgrind: serve `_WARM`, then `requests` requests."""
    from benchmarks.bare_relay import BareRelay

    with tempfile.TemporaryDirectory(prefix="switchyard-instructions-") as tmp:
        relay = target == "relay"
        app: App = BareRelay(f"http://127.0.0.1:{port}/v1") if relay else gateway_app(Path(tmp), port, False)
        with quiet_stderr():
            uvloop.run(serve_load(app, stream, requests, _WARM, _CONCURRENCY))


def _count(target: str, requests: int, port: int, stream: bool, log_dir: Path) -> int:
    log = log_dir / f"valgrind-{target}-{requests}.log"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--cache-sim=no",
        "--callgrind-out-file=/dev/null",
        f"--log-file={log}",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        target,
        str(requests),
        str(port),
    ]
    if stream:
        argv.append("--stream")
    # OpenBLAS (loaded with numpy for the local models) spins a thread that valgrind would count,
    # more the longer the run takes: one thread, none spinning.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run(argv, cwd=REPO_ROOT, env=env, check=True, timeout=1800)
    found = _COLLECTED.findall(log.read_text())
    if not found:
        raise RuntimeError(f"no instruction count in {log}")
    return int(found[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.splitlines()[0])
    p.add_argument("--stream", action="store_true", help="streaming chat (20 chunks), not JSON")
    p.add_argument("--requests", type=int, default=400, help="the requests the second run serves more")
    p.add_argument("--base", type=int, default=80, help="the requests the first run serves")
    p.add_argument("--no-relay", action="store_true", help="do not count the bare relay")
    p.add_argument("--child", nargs=3, metavar=("TARGET", "N", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        target, n, port = args.child
        _child(target, int(n), int(port), args.stream)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: run benchmarks/setup.sh (Debian, as root)")
    with (
        tempfile.TemporaryDirectory(prefix="switchyard-instructions-") as tmp,
        fake_upstream(Path(tmp)) as port,
    ):
        per_request: dict[str, float] = {}
        for target in ("gateway",) if args.no_relay else ("gateway", "relay"):
            few = _count(target, args.base, port, args.stream, Path(tmp))
            many = _count(target, args.base + args.requests, port, args.stream, Path(tmp))
            per_request[target] = (many - few) / args.requests
            print(f"{target}: {per_request[target]:,.0f} instructions per request")
        if "relay" in per_request:
            print(f"gateway / relay: {per_request['gateway'] / per_request['relay']:.2f}x")


if __name__ == "__main__":
    main()
