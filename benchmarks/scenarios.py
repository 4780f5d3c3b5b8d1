"""The four scenarios, each run the same way against a target (the upstream, the bare relay, the gateway)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import uvloop

from benchmarks import procstat
from benchmarks.common import LoadResult
from benchmarks.services import Service
from benchmarks.stream_load import open_streams, run_streams
from benchmarks.wrk_load import run_wrk

SCENARIOS = ("nonstream-c1", "nonstream-c32", "stream-c64", "streams-1000")
OPEN_STREAMS = 1000

Metrics = dict[str, Any]


@dataclass(frozen=True)
class Target:
    name: str  # "direct", "relay" or "gateway"
    url: str  # the chat completions endpoint
    api_key: str
    model: str  # 20 chunks, 10 ms apart
    slow_model: str  # 20 chunks, 500 ms apart
    service: Service  # the process whose CPU and memory are measured


Runner = Callable[[Target, Service, bool], Metrics]


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def headers(target: Target) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {target.api_key}"}


def measure(
    target: Target, upstream: Service, load: Callable[[], tuple[LoadResult, dict[str, Any]]]
) -> dict[str, Any]:
    meter, upstream_meter = procstat.CpuMeter(target.service.pid), procstat.CpuMeter(upstream.pid)
    meter.start()
    upstream_meter.start()
    result, extra = load()
    meter.settle()
    cpu, tree_cpu = meter.stop()
    upstream_cpu, _ = upstream_meter.stop()
    n = max(result.requests, 1)
    hwm = procstat.status_kb(target.service.pid, "VmHWM")
    return {
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "ttft_p50_ms": result.ttft_p50_ms,
        "ttft_p99_ms": result.ttft_p99_ms,
        "errors": result.errors,
        "error_kinds": result.error_kinds,
        "cpu_ms_per_req": cpu * 1000 / n,
        "tree_cpu_ms_per_req": tree_cpu * 1000 / n,
        "upstream_cpu_ms_per_req": upstream_cpu * 1000 / n,
        "peak_rss_mb": hwm / 1024 if hwm is not None else None,
        **extra,
    }


def wrk_scenario(connections: int, threads: int) -> Runner:
    def run(target: Target, upstream: Service, quick: bool) -> dict[str, Any]:
        body = chat_body(target.model, stream=False)
        run_wrk(target.url, body, target.api_key, connections, threads, 1)  # warm-up: fill connection pools
        seconds = 3 if quick else 10
        return measure(
            target,
            upstream,
            lambda: (run_wrk(target.url, body, target.api_key, connections, threads, seconds), {}),
        )

    return run


def stream_scenario(target: Target, upstream: Service, quick: bool) -> dict[str, Any]:
    body, hdrs = chat_body(target.model, stream=True), headers(target)
    seconds = 4 if quick else 10
    return measure(
        target, upstream, lambda: (uvloop.run(run_streams(target.url, hdrs, body, 64, seconds)), {})
    )


def open_streams_scenario(target: Target, upstream: Service, quick: bool) -> dict[str, Any]:
    body, hdrs = chat_body(target.slow_model, stream=True), headers(target)
    pid = target.service.pid
    extra: dict[str, Any] = {
        "all_open": False,
        "open_seconds": None,
        "rss_before_mb": None,
        "rss_open_mb": None,
    }

    async def while_open(all_opened: bool) -> None:
        samples = [procstat.status_kb(pid, "VmRSS") or 0]
        await asyncio.sleep(1.0)
        samples.append(procstat.status_kb(pid, "VmRSS") or 0)
        extra["all_open"] = all_opened
        extra["rss_open_mb"] = max(samples) / 1024

    def load() -> tuple[LoadResult, dict[str, Any]]:
        before = procstat.status_kb(pid, "VmRSS") or 0
        extra["rss_before_mb"] = before / 1024
        result, open_seconds = uvloop.run(open_streams(target.url, hdrs, body, OPEN_STREAMS, while_open))
        extra["open_seconds"] = open_seconds
        if extra["rss_open_mb"] is not None:
            extra["kb_per_stream"] = (extra["rss_open_mb"] * 1024 - before) / OPEN_STREAMS
        return result, extra

    return measure(target, upstream, load)


RUNNERS: dict[str, Runner] = {
    "nonstream-c1": wrk_scenario(1, 1),
    "nonstream-c32": wrk_scenario(32, 2),
    "stream-c64": stream_scenario,
    "streams-1000": open_streams_scenario,
}


def smoke_test(target: Target) -> None:
    """One plain and one streaming request, so a misconfigured target fails loudly before the load."""
    for stream in (False, True):
        req = urllib.request.Request(
            target.url, data=chat_body(target.model, stream), headers=headers(target)
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = resp.read()
        if (stream and b"data: [DONE]" not in data) or (not stream and b'"choices"' not in data):
            raise RuntimeError(
                f"{target.name}: unexpected {'stream' if stream else 'response'}: {data[:300]!r}"
            )


def warm_up(target: Target) -> None:
    run_wrk(target.url, chat_body(target.model, stream=False), target.api_key, 4, 1, 1)
    uvloop.run(run_streams(target.url, headers(target), chat_body(target.model, stream=True), 8, 1.0))
