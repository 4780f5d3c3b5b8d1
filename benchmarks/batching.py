"""Dynamic batching on vs off: the same concurrent load against local ONNX models, in-process.

    .venv/bin/python -m benchmarks.batching                 # iris, and MiniLM when its weights are installed
    .venv/bin/python -m benchmarks.batching --seconds 5 --repeat 5 --concurrency 64 1

For each model the same files are served twice: as configured (batching on) and with
max_batch_size 1 (off). Callers are asyncio tasks on one uvloop, each sending its next request as soon
as the last one is answered, for a fixed time; each case runs `--repeat` times, alternating on and off,
and the run with the median throughput is shown. Three paths are measured:

- `iris oip`: the Open Inference Protocol route function (`inference_routes.infer`) with a JSON-shaped
  body, so validation and response building are included (what the HTTP route adds is not);
- `iris batcher`: ready-made tensors submitted straight to the model's batcher (what batching itself buys);
- `minilm embed`: `ModelManager.embed` for the embedding model (tokenizing runs in the worker thread).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from local_runtime import inference_routes
from local_runtime.importers import ImportFailed, import_iris, import_minilm
from local_runtime.model_manager import ModelManager
from local_runtime.oip import batch_key
from local_runtime.runners import TensorRequest

from benchmarks.common import LoadResult, percentile

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.6, 3.1, 1.5, 0.2]]
SENTENCES = [
    "How do I reset my password?",
    "The invoice for March is missing the VAT number.",
    "Our deployment failed after the latest release, please help.",
    "What are your opening hours on public holidays?",
    "Can I move my subscription to the annual plan?",
    "The app crashes when I upload a photo larger than ten megabytes.",
    "Please cancel my order number 48213.",
    "Is there an API to export all my data as CSV?",
]


def _variant(source: Path, repository: Path, model: str, batching: bool) -> None:
    """A copy of `model` as `<model>-on` or `<model>-off` (max_batch_size 1)."""
    name = f"{model}-{'on' if batching else 'off'}"
    shutil.copytree(source / model, repository / name)
    spec_path = repository / name / "model.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    if not batching:
        spec["max_batch_size"] = 1
    spec["max_queue_size"] = 4096
    spec_path.write_text(yaml.safe_dump(spec))


async def _load(call: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()

    async def client(index: int, until: float, record: bool) -> None:
        nonlocal errors
        counter = index
        while loop.time() < until:
            started = time.perf_counter()
            try:
                await call(counter)
            except Exception:
                errors += 1
            if record:
                latencies.append((time.perf_counter() - started) * 1000)
            counter += concurrency

    warm_until = loop.time() + min(0.5, seconds / 4)
    await asyncio.gather(*(client(i, warm_until, False) for i in range(concurrency)))
    started = time.perf_counter()
    until = loop.time() + seconds
    await asyncio.gather(*(client(i, until, True) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(len(latencies), elapsed, percentile(latencies, 50), percentile(latencies, 99), errors)


def _iris_oip(manager: ModelManager, name: str) -> Callable[[int], Awaitable[Any]]:
    async def call(i: int) -> None:
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[i % 4]}]}
        status, reply = await inference_routes.infer(manager, name, body)
        if status != 200:
            raise RuntimeError(reply)

    return call


def _iris_batcher(manager: ModelManager, name: str) -> Callable[[int], Awaitable[Any]]:
    rows = [TensorRequest({"input": np.array([row], dtype=np.float32)}, rows=1) for row in IRIS_ROWS]

    async def call(i: int) -> None:
        model = manager.get(name)
        await model.batcher.submit(rows[i % 4], key=batch_key(rows[i % 4]))

    return call


def _embed_call(manager: ModelManager, name: str) -> Callable[[int], Awaitable[Any]]:
    async def call(i: int) -> None:
        await manager.embed(name, [SENTENCES[i % len(SENTENCES)]])

    return call


CallFactory = Callable[[ModelManager, str], Callable[[int], Awaitable[Any]]]


async def _run(args: argparse.Namespace, repository: Path) -> list[tuple[str, int, str, LoadResult, float]]:
    manager = ModelManager(repository)
    await manager.start()
    rows = []
    try:
        cases: list[tuple[str, str, CallFactory]] = [
            ("iris oip", "iris-classifier", _iris_oip),
            ("iris batcher", "iris-classifier", _iris_batcher),
        ]
        if (repository / "all-minilm-l6-v2-on").exists():
            cases.append(("minilm embed", "all-minilm-l6-v2", _embed_call))
        for label, model, make in cases:
            for concurrency in args.concurrency:
                runs: dict[str, list[tuple[LoadResult, float]]] = {"on": [], "off": []}
                for attempt in range(args.repeat):
                    # Alternate the order, so a noisy neighbour or a warm cache favours neither mode.
                    for mode in ("on", "off") if attempt % 2 == 0 else ("off", "on"):
                        name = f"{model}-{mode}"
                        before = manager.model_status(name).stats
                        result = await _load(make(manager, name), concurrency, args.seconds)
                        after = manager.model_status(name).stats
                        assert before is not None and after is not None
                        batches = after.batches - before.batches
                        mean = (after.requests - before.requests) / batches if batches else 0.0
                        runs[mode].append((result, mean))
                for mode in ("on", "off"):
                    result, mean = sorted(runs[mode], key=lambda r: r[0].rps)[len(runs[mode]) // 2]
                    rows.append((label, concurrency, mode, result, mean))
    finally:
        await manager.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="Measured time per run.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per case; the median run is shown.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 1])
    parser.add_argument("--no-minilm", action="store_true", help="Skip the embedding model.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        source = Path(tmp) / "source"
        repository = Path(tmp) / "models"
        repository.mkdir()
        import_iris(source)
        models = ["iris-classifier"]
        if not args.no_minilm:
            try:
                import_minilm(source)
                models.append("all-minilm-l6-v2")
            except ImportFailed as exc:
                print(f"(no embedding model: {exc})")
        for model in models:
            _variant(source, repository, model, batching=True)
            _variant(source, repository, model, batching=False)
        runner = _event_loop_runner()
        with runner:
            rows = runner.run(_run(args, repository))
    _print(rows)


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _print(rows: list[tuple[str, int, str, LoadResult, float]]) -> None:
    header = ("model", "conc", "batching", "req/s", "p50 ms", "p99 ms", "batch", "err")
    print("{:<18} {:>4} {:>8} {:>9} {:>8} {:>8} {:>6} {:>4}".format(*header))
    for model, concurrency, mode, r, mean in rows:
        print(
            f"{model:<18} {concurrency:>4} {mode:>8} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{mean:>6.1f} {r.errors:>4}"
        )
    by_key = {(m, c, mode): r for m, c, mode, r, _ in rows}
    print()
    for model, concurrency in dict.fromkeys((m, c) for m, c, _, _, _ in rows):
        on, off = by_key[(model, concurrency, "on")], by_key[(model, concurrency, "off")]
        print(
            f"{model} at concurrency {concurrency}: batching gives {on.rps / off.rps:.1f}x the throughput; "
            f"p99 {on.p99_ms - off.p99_ms:+.2f} ms vs off"
        )


if __name__ == "__main__":
    main()
