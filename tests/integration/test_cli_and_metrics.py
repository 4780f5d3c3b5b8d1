"""`switchyard config check`, health endpoints and Prometheus metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import ROOT

USER = [{"role": "user", "content": "x"}]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )


def test_config_check_ok_and_errors(tmp_path: Path) -> None:
    ok = run_cli("config", "check", str(ROOT / "examples" / "quickstart.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers: {openai: {kind: openai, api_key: sk-secret-should-not-leak}}\n"
        "models:\n  chat-default:\n    deployments:\n"
        "      - {provider: openai, model: gpt-4o}\n      - {provider: opnai, model: gpt-4o-mini}\n"
    )
    result = run_cli("config", "check", str(bad))
    assert result.returncode == 1
    assert "models.chat-default.deployments[1].provider: unknown provider 'opnai'" in result.stderr
    assert "sk-secret-should-not-leak" not in result.stderr + result.stdout


def test_serve_refuses_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: nope}\n")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 1 and "server.port" in result.stderr


def test_health_and_metrics(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={
            "chat": {
                "deployments": [
                    {"provider": "fake", "model": "gpt-fake+status-500"},
                    {"provider": "fake", "model": "gpt-fake"},
                ]
            }
        },
    )
    http = gateway.http()
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json()["checks"] == {"config": True, "store": True, "accepting": True}
    client = gateway.openai()
    client.chat.completions.create(model="chat", messages=USER)
    list(client.chat.completions.create(model="chat", messages=USER, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=USER)
    text = http.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    ok = {"model": "chat", "deployment": "fake/gpt-fake"}
    requests = {"endpoint": "chat/completions", "provider": "openai", "status_class": "2xx", "error_type": ""}
    assert value("switchyard_requests_total", **ok, **requests) == 2
    assert value("switchyard_request_duration_seconds_count", **ok, endpoint="chat/completions") == 2
    assert value("switchyard_time_to_first_token_seconds_count", **ok) == 1
    assert value("switchyard_tokens_total", **ok, type="prompt") > 0
    assert value("switchyard_tokens_total", **ok, type="completion") > 0
    assert value("switchyard_upstream_attempts_total", **ok, outcome="success") == 2
    failed = {"model": "chat", "deployment": "fake/gpt-fake+status-500"}
    assert value("switchyard_upstream_errors_total", **failed, error="upstream_status_500") == 2
    assert value("switchyard_failovers_total", model="chat") == 2
