"""Local ONNX models through the real gateway: /v2 inference for the iris classifier built at start,
/v1/embeddings from a local model priced at an internal price, failover to a hosted embedding API,
hot reload through the admin API, and the same keys and errors as every other route."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fixtures.local_runtime.support import iris_body
from tests.fixtures.local_runtime.tiny_bert import write_tiny_model
from tests.integration.ledger_support import wait_events
from tests.servers import ADMIN_KEY, TENANT_KEY, Gateway

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("models")
    write_tiny_model(repo, "tiny-embed")
    return repo


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, repository: Path, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={
            "local": {"kind": "onnx", "repository": str(repository), "bootstrap": ["iris"], "watch_interval": "200ms"},
            "hosted": upstream_provider(upstream),
        },
        models={
            "embed-local": {
                "deployments": [
                    {
                        "provider": "local",
                        "model": "tiny-embed",
                        "capabilities": {"chat": False, "embeddings": True},
                        "price": {"input": 0.01},
                    },
                    {"provider": "hosted", "model": "text-embedding-3-small"},
                ]
            },
            "embed-missing-local": {
                "deployments": [
                    {"provider": "local", "model": "not-there", "capabilities": {"chat": False, "embeddings": True}},
                    {"provider": "hosted", "model": "text-embedding-3-small"},
                ]
            },
        },
    )


def client(gateway: Gateway, key: str = TENANT_KEY) -> httpx.Client:
    return gateway.http(headers={"authorization": f"Bearer {key}"})


def test_iris_classifier_built_on_first_start_answers_v2(gateway: Gateway, redis_url: str) -> None:
    http = client(gateway)
    meta = http.get("/v2/models/iris-classifier")
    assert meta.status_code == 200, meta.text
    assert meta.json()["name"] == "iris-classifier" and "CPUExecutionProvider" in str(meta.json())
    assert http.get("/v2/models/iris-classifier/ready").status_code == 200
    answer = http.post("/v2/models/iris-classifier/infer", json=iris_body(ROWS))
    assert answer.status_code == 200, answer.text
    assert "setosa" in answer.text and "virginica" in answer.text
    store = redis.Redis.from_url(redis_url)
    recorded = [e for e in wait_events(store, "acme", 1) if e["endpoint"] == "v2/infer"]
    store.close()
    assert recorded and recorded[-1]["deployment"] == "local/iris-classifier" and recorded[-1]["status"] == 200
    bad = http.post(
        "/v2/models/iris-classifier/infer",
        json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
    )
    assert bad.status_code == 400 and "input" in bad.json()["error"]
    assert http.get("/v2/models/nope").status_code == 404
    assert gateway.http().get("/v2/models/iris-classifier").status_code == 401


def test_local_embeddings_are_priced_at_the_internal_price(gateway: Gateway, redis_url: str) -> None:
    sdk = gateway.openai()
    raw = sdk.embeddings.with_raw_response.create(model="embed-local", input=["hello there", "a second one"])
    assert raw.headers["x-switchyard-deployment"] == "local/tiny-embed"
    vectors = raw.parse().data
    assert len(vectors) == 2 and len(vectors[0].embedding) > 0
    store = redis.Redis.from_url(redis_url)
    event = next(e for e in wait_events(store, "acme", 1) if e["request_id"] == raw.headers["x-request-id"])
    store.close()
    assert event["provider_kind"] == "onnx" and event["prompt_tokens"] > 0 and event["estimated"] is False
    assert event["price_version"] == "deployment:local/tiny-embed@always"


def test_a_missing_local_model_fails_over_to_the_hosted_api(gateway: Gateway) -> None:
    raw = gateway.openai().embeddings.with_raw_response.create(model="embed-missing-local", input="x")
    assert raw.headers["x-switchyard-deployment"] == "hosted/text-embedding-3-small"
    assert raw.headers["x-switchyard-attempts"] == "2"


def test_a_new_version_hot_swaps_and_a_broken_one_is_refused(gateway: Gateway, repository: Path) -> None:
    admin = gateway.http(headers={"authorization": f"Bearer {ADMIN_KEY}"})
    shutil.copytree(repository / "iris-classifier" / "1", repository / "iris-classifier" / "2")
    swapped = admin.post("/admin/v1/models/iris-classifier/reload")
    assert swapped.status_code == 200, swapped.text
    assert client(gateway).get("/v2/models/iris-classifier").json()["versions"][-1] == "2"
    broken = repository / "iris-classifier" / "3"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a model")
    refused = admin.post("/admin/v1/models/iris-classifier/reload")
    assert refused.status_code == 500 and str(refused.json().get("serving_version")) == "2"
    assert client(gateway).post("/v2/models/iris-classifier/infer", json=iris_body(ROWS)).status_code == 200
    assert client(gateway).post("/admin/v1/models/iris-classifier/reload").status_code == 403


def test_batch_figures_are_exported(gateway: Gateway) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        assert client(gateway).post("/v2/models/iris-classifier/infer", json=iris_body(ROWS)).status_code == 200
    text = gateway.http().get("/metrics").text
    found = {(s.name, s.labels.get("model")): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert found[("switchyard_onnx_batched_requests_total", "iris-classifier")] >= 3
    assert found[("switchyard_onnx_batches_total", "iris-classifier")] >= 1
    assert ("switchyard_onnx_queue_seconds_total", "iris-classifier") in found
    assert found[("switchyard_onnx_queue_depth", "iris-classifier")] == 0


def test_a_supervised_vllm_server_is_started_routed_to_and_restarted(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    import os
    import signal
    import sys
    import time

    from tests.servers import free_port

    fake = Path(__file__).resolve().parent.parent / "fixtures" / "local_runtime" / "fake_vllm.py"
    port = free_port()
    gateway = gateway_factory(
        local_runtime={
            "vllm": [
                {
                    "name": "gpu-local",
                    "model": "org/llama",
                    "port": port,
                    "command": [sys.executable, str(fake), "serve"],
                    "health_interval": 0.1,
                    "restart_backoff": 0.3,
                    "log_dir": str(tmp_path / "vllm-logs"),
                }
            ]
        },
        models={"chat": {"deployments": [{"provider": "gpu-local", "model": "org/llama"}]}},
    )

    def ask() -> str | None:
        try:
            raw = gateway.openai().chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
        except Exception:
            return None
        return raw.headers["x-switchyard-deployment"]

    deadline = time.monotonic() + 20
    while ask() != "gpu-local/org/llama" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ask() == "gpu-local/org/llama"
    children = Path(f"/proc/{gateway.process.pid}/task/{gateway.process.pid}/children").read_text().split()
    vllm = next(int(c) for c in children if "fake_vllm" in Path(f"/proc/{c}/cmdline").read_text(errors="replace"))
    os.kill(vllm, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if ask() == "gpu-local/org/llama":
            break
    assert ask() == "gpu-local/org/llama"  # restarted by the supervisor
    assert (tmp_path / "vllm-logs").exists() and any((tmp_path / "vllm-logs").iterdir())
    gateway.stop()
    time.sleep(0.5)
    assert not any(f"--port\x00{port}" in _cmdline(p) for p in Path("/proc").glob("[0-9]*/cmdline")), (
        "the supervised server stops with the gateway"
    )


def _cmdline(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
