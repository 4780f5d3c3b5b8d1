"""Compile the request path with mypyc into build/native/, next to (never over) the sources.

    python scripts/build_native.py            # build, about a minute on 2 cores
    python scripts/build_native.py --list     # the modules it compiles

The sources stay importable and stay the truth: `providers.native` puts build/native/ in front of
each package's `__path__` only while every compiled module's source still has the SHA-256 written in
build/native/manifest.json. Editing any of them turns the whole build off until it is rebuilt, so a
stale extension never shadows an edited file, and compiled and interpreted copies are never mixed.

A module is listed here only if it compiles and the whole suite passes with it compiled, and only if
it is synchronous (`check_synchronous` refuses `async def`, `await`, `async for` and `async with`).
mypyc 2.4.1 miscompiles one coroutine pattern the request path uses: in a compiled coroutine whose
`try` caught an exception that an interpreted callee turned into another one (an async generator
converting aiohttp's ClientPayloadError into UpstreamProtocolError), an `await` of an interpreted
coroutine in the `finally` re-raises the first exception, long handled, instead of going on. A broken
upstream stream then escaped as an internal error and was not billed. So the coroutines (proxy,
request lifecycle, attempts, transports) stay interpreted; what is compiled is the synchronous work
they call. Also left out, and why:
- gateway/usage_record.py: orjson reads a dataclass's fields through its `__dict__`/slots layout and
  crashes (SIGSEGV) on a compiled one; the ledger serializes UsageRecord with orjson.
- providers/base.py: runtime_checkable Protocols; mypyc also fails on a lambda inside Annotated.
- providers/http_transport.py: UpstreamBody is subclassed by interpreted classes (tests, providers).
- providers/wire.py and anything pydantic: pydantic builds models from interpreted class bodies.
- gateway/loop_metrics.py: subclasses prometheus-client's metric classes, whose internals it reaches.
- gateway/metrics.py: its registry is read back through `vars()` (the dashboards' test derives every
  exported metric that way); a compiled class has no `__dict__`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "native"

MODULES = [
    # per chunk or per attempt: the stream scanner, deadlines, token estimates, SSE and translation helpers
    "providers/openai_sse.py",
    "providers/deadline.py",
    "providers/usage_estimate.py",
    "providers/usage_counts.py",
    "providers/records.py",
    "providers/idle_work.py",
    "providers/sse.py",
    "providers/tokens.py",
    "providers/chat_translation.py",
    # per request: routing, requirements, admission, settlement, request log, ids, tags, auth
    "gateway/routing.py",
    "gateway/requirements.py",
    "gateway/settlement.py",
    "gateway/request_log.py",
    "gateway/request_ids.py",
    "gateway/tags.py",
    "gateway/auth.py",
    "gateway/ratelimit_headers.py",
    "gateway/accounting.py",
    "gateway/admission_rules.py",
    "gateway/asgi_headers.py",
    "gateway/archive/entries.py",
    # the routing decisions and the health bookkeeping they read
    "policies/router.py",
    "policies/constraints.py",
    "policies/candidates.py",
    "policies/latency_tracker.py",
    "policies/rolling_counts.py",
    "policies/circuit_breaker.py",
    "policies/retry.py",
    "policies/retry_budget.py",
    "policies/hedging.py",
    "policies/frozen_record.py",
    "policies/observations.py",
    "policies/capabilities.py",
    "policies/admission_lease.py",
    "policies/strategies/ranking.py",
    "policies/strategies/priority.py",
    "policies/strategies/weighted.py",
    "policies/strategies/lowest_cost.py",
    "policies/strategies/lowest_latency.py",
    "policies/strategies/least_load.py",
    "policies/strategies/spillover.py",
    "policies/strategies/slo_cost.py",
]


def check_synchronous(path: Path) -> list[str]:
    """The coroutine constructs in a module, as `path:line: what` (see the module's docstring)."""
    tree = ast.parse(path.read_text(), str(path))
    kinds = {
        ast.AsyncFunctionDef: "async def",
        ast.Await: "await",
        ast.AsyncFor: "async for",
        ast.AsyncWith: "async with",
    }
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {kinds[type(node)]}" for node in ast.walk(tree) if type(node) in kinds
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(staging: Path, hashes: dict[str, str]) -> dict[str, object]:
    import mypy.version

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (runtime,) = staging.glob(f"*__mypyc{suffix}")  # the compiled modules' shared library
    return {
        "python": sys.version,
        "ext_suffix": suffix,
        "runtime": runtime.name,
        "mypy": mypy.version.__version__,
        "modules": hashes,
    }


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    refused = [found for path in MODULES for found in check_synchronous(ROOT / path)]
    if refused:
        raise SystemExit("not compiled: coroutines stay interpreted\n" + "\n".join(refused))
    # Hashed before compiling: a source edited while the build runs then reads as stale, not as built.
    hashes = {path.removesuffix(".py").replace("/", "."): sha256(ROOT / path) for path in MODULES}
    os.chdir(ROOT)  # mypycify names modules by their path from the working directory
    work = Path(tempfile.mkdtemp(prefix="switchyard-native-"))
    try:
        extensions = mypycify(MODULES, opt_level="3", target_dir=str(work / "c"))
        staging = work / "lib"
        # setuptools reads ./pyproject.toml when it runs; this build is not the project's package, so it
        # runs from an empty directory (an older setuptools also rejects the project's SPDX license field).
        os.chdir(work)
        setup(
            name="switchyard-native",
            ext_modules=extensions,
            script_args=["--quiet", "build_ext", "--build-lib", str(staging), "--build-temp", str(work / "tmp")],
        )
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, OUT)
        # The manifest is written last: a build interrupted before this line is never used.
        (OUT / "manifest.json").write_text(json.dumps(manifest(staging, hashes), indent=2) + "\n")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--list" in argv:
        print("\n".join(MODULES))
        return 0
    build()
    print(f"compiled {len(MODULES)} modules into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
