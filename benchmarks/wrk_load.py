"""Non-streaming load with wrk: a POST script, then its --latency report parsed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

from benchmarks.common import LoadResult

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DIST_RE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    pass


def lua_script(body: bytes, api_key: str) -> str:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("request body cannot be embedded in a Lua long string")
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {api_key}"\n'
    )


def parse_wrk(output: str) -> LoadResult:
    dist = {q: float(v) * _UNITS_MS[u] for q, v, u in _DIST_RE.findall(output)}
    done = _REQUESTS_RE.search(output)
    if done is None or "50" not in dist or "99" not in dist:
        raise WrkError(f"cannot parse wrk output:\n{output}")
    errors: dict[str, int] = {}
    sock = _SOCKET_RE.search(output)
    if sock:
        for name, value in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            if int(value):
                errors[f"socket_{name}"] = int(value)
    non2xx = _NON2XX_RE.search(output)
    if non2xx and int(non2xx.group(1)):
        errors["non_2xx"] = int(non2xx.group(1))
    return LoadResult(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS_MS[done.group(3)] / 1000.0,
        p50_ms=dist["50"],
        p99_ms=dist["99"],
        errors=sum(errors.values()),
        error_kinds=errors,
    )


def run_wrk(url: str, body: bytes, api_key: str, connections: int, threads: int, seconds: int) -> LoadResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk is not installed; run `bash benchmarks/setup.sh`")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(body, api_key))
        script.flush()
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, seconds)}s",
            "--latency",
            "-s",
            script.name,
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout)


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "missing"
    proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else "unknown"
