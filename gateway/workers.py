"""`server.workers: N`: N gateway processes on one listening socket, supervised by the parent.

The parent binds the socket, starts the embedded Redis once (when no `redis_url` is set) so the workers
share it, points prometheus-client's multiprocess mode at `data_dir/metrics` so `/metrics` on any worker
sums every worker's figures, then forks the workers. It forwards SIGTERM (drain) and SIGHUP (reload) to
them, restarts a worker that dies (with backoff), and stops the embedded Redis after the last one ends.
Health statistics (breakers, latency) stay per worker, as the design says: only decisions that need
every replica's view go through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from types import FrameType

from gateway.config import GatewayConfig
from gateway.settings import Settings
from gateway.store import EmbeddedRedis

log = logging.getLogger("switchyard.workers")

_RESTART_BACKOFF = (0.5, 1, 2, 5, 10)


def serve_workers(
    settings: Settings, config: GatewayConfig, host: str, port: int, workers: int, log_level: str
) -> None:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(4096)
    listener.set_inheritable(True)
    bound = listener.getsockname()[1]
    data_dir = Path(config.server.data_dir)
    metrics_dir = data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = {**settings.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir.resolve())}
    embedded = EmbeddedRedis(data_dir) if not config.store.redis_url else None
    if embedded is not None:
        asyncio.run(embedded.start())
    context = multiprocessing.get_context("fork")
    running: dict[int, tuple[int, multiprocessing.process.BaseProcess]] = {}
    stopping = False
    restarts = [0] * workers

    def start(index: int) -> None:
        worker_settings = Settings(settings.config_path, {**env, "SWITCHYARD_WORKER": str(index)}, host, bound)
        process = context.Process(
            target=_worker, args=(worker_settings, config, listener, host, bound, log_level), name=f"worker-{index}"
        )
        process.start()
        assert process.pid is not None
        running[process.pid] = (index, process)

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(running):
            try:
                os.kill(pid, signal.SIGTERM if sig == signal.SIGINT else sig)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for index in range(workers):
        start(index)
    log.info("Uvicorn running on http://%s:%d with %d workers (pid %d supervises)", host, bound, workers, os.getpid())
    try:
        while running:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            entry = running.pop(pid, None)
            if entry is None:
                continue
            index, _ = entry
            _mark_dead(pid, metrics_dir)
            if stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            delay = _RESTART_BACKOFF[min(restarts[index], len(_RESTART_BACKOFF) - 1)]
            restarts[index] += 1
            log.error("worker %d (pid %d) exited with %s; restarting in %.1fs", index, pid, code, delay)
            time.sleep(delay)
            if not stopping:
                start(index)
    finally:
        listener.close()
        if embedded is not None:
            asyncio.run(embedded.stop())


def _worker(
    settings: Settings, config: GatewayConfig, listener: socket.socket, host: str, port: int, log_level: str
) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    # prometheus-client reads its directory from the process environment, and picks its value class at
    # import: the parent imported it single-process.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.env["PROMETHEUS_MULTIPROC_DIR"]
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()
    from gateway.app import create_app
    from gateway.server import serve

    serve(create_app(settings, config), host, port, config.server.drain_grace, log_level, sockets=[listener])


def _mark_dead(pid: int, metrics_dir: Path) -> None:
    """Drop a dead worker's live gauges (in flight, backlog) from the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics_dir))
