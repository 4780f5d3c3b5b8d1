"""The processes under test: the fake upstream and the gateway, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks import procstat

REPO_ROOT = Path(__file__).resolve().parent.parent
GATEWAY_KEY = "sk-bench"
UPSTREAM_KEY = "sk-upstream"
FAST_UPSTREAM_MODEL = "bench-c20-d10"
SLOW_UPSTREAM_MODEL = "bench-c20-d500"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ACCOUNTING = """\
tenants:
  bench:
    budget: {usd: 1000000000, period: month}
    rate_limit: {rpm: 1000000000, tpm: 1000000000000}
"""


def gateway_config(data_dir: Path, upstream_port: int, accounting: bool = False) -> str:
    """The benchmark's gateway; with `accounting`, the tenant has a budget and rpm/tpm limits, and the
    deployments a price, so every request runs admission and settlement."""
    price = ", price: {input: 0.15, output: 0.6}" if accounting else ""
    return _BASE_CONFIG.format(data_dir=data_dir, upstream_port=upstream_port, price=price) + (
        ACCOUNTING if accounting else ""
    )


_BASE_CONFIG = f"""\
server:
  host: 127.0.0.1
  port: 8080
  data_dir: {{data_dir}}
store:
  redis_url: ""
auth:
  admin_key: sk-bench-admin
  keys:
    - {{{{key: {GATEWAY_KEY}, tenant: bench}}}}
providers:
  upstream:
    kind: openai
    base_url: http://127.0.0.1:{{upstream_port}}/v1
    api_key: {UPSTREAM_KEY}
models:
  bench:
    deployments:
      - {{{{provider: upstream, model: {FAST_UPSTREAM_MODEL}{{price}}}}}}
  bench-slow:
    deployments:
      - {{{{provider: upstream, model: {SLOW_UPSTREAM_MODEL}{{price}}}}}}
"""


class ServiceError(RuntimeError):
    pass


class Service:
    """A subprocess in its own session; stop() also ends descendants that left its process group."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        """Variables set for this service on top of the benchmark's own environment."""
        self.proc: subprocess.Popen[bytes] | None = None
        self._adopted: dict[int, str] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env} if self.env else None,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def adopt_descendants(self) -> None:
        """Remember current descendants (e.g. an embedded redis-server in its own session) for stop()."""
        for pid in procstat.descendants(self.pid):
            cmd = procstat.cmdline(pid)
            if cmd:
                self._adopted[pid] = cmd

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(
                    f"{self.name} exited with {self.proc and self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise ServiceError(f"{self.name}: {url} not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None:
            if self.alive():
                self.adopt_descendants()
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers left in the group
        for pid, cmd in self._adopted.items():
            _stop_pid(pid, cmd, grace)
        self._adopted.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_pid(pid: int, cmd: str, grace: float) -> None:
    """End pid only while it still runs the command we saw (pids get reused)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if procstat.cmdline(pid) != cmd:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and procstat.cmdline(pid) == cmd:
            time.sleep(0.05)
