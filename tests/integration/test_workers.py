"""Several worker processes on one port: /metrics sums every worker, and a killed worker is restarted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory
from tests.servers import ADMIN_KEY, TENANT_KEY

SECTIONS = {
    "providers": {"mock": {"kind": "mock", "chunk_delay_ms": 0}},
    "models": {"m": {"deployments": [{"provider": "mock", "model": "mock"}]}},
}


def served_total(text: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "switchyard_requests_total" and s.labels.get("model") == "m"
    )


def worker_pids(parent: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    children.add(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return children


def test_two_workers_share_the_port_and_the_metrics(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(server={"workers": 2}, **SECTIONS)
    workers = worker_pids(gateway.process.pid)
    redis_like = {p for p in workers if "redis" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")}
    assert len(workers - redis_like) == 2
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        for i in range(30):  # new connections each time: the kernel spreads them over both workers
            response = http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": f"w{i}"}]},
                headers={"authorization": f"Bearer {TENANT_KEY}", "connection": "close"},
            )
            assert response.status_code == 200
        scrapes = {
            served_total(
                http.get("/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}", "connection": "close"}).text
            )
            for _ in range(6)
        }
    assert scrapes == {30.0}  # whichever worker answers the scrape, it reports all 30

    victim = sorted(workers - redis_like)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = worker_pids(gateway.process.pid)
        if victim not in now and len(now - redis_like) == 2:
            break
        time.sleep(0.1)
    assert victim not in worker_pids(gateway.process.pid) and len(worker_pids(gateway.process.pid) - redis_like) == 2
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        ok = http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "after"}]},
            headers={"authorization": f"Bearer {TENANT_KEY}"},
        )
        assert ok.status_code == 200
    assert gateway.stop() == 0
