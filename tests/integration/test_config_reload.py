"""Atomic config reload by admin API and SIGHUP; bad configs are rejected and the old one keeps serving."""

from __future__ import annotations

import signal
import threading
import time

import openai
import pytest
import yaml

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import ADMIN_KEY, TENANT_KEY, Gateway

USER = [{"role": "user", "content": "x"}]


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={"old": {"deployments": [{"provider": "fake", "model": "gpt-fake+words-40+slow-40"}]}},
    )


def edit(gateway: Gateway, change) -> None:  # type: ignore[no-untyped-def]
    config = yaml.safe_load(gateway.config_path.read_text())
    change(config)
    gateway.config_path.write_text(yaml.safe_dump(config))


def model_ids(gateway: Gateway) -> set[str]:
    return {m.id for m in gateway.openai().models.list()}


def test_admin_reload_swaps_models_and_in_flight_stream_finishes(gateway: Gateway) -> None:
    client = gateway.openai()
    stream = client.chat.completions.create(model="old", messages=USER, stream=True)
    first = next(iter(stream))
    edit(gateway, lambda c: c["models"].update({"new": c["models"].pop("old")}))
    response = gateway.http().post("/admin/v1/config/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200 and response.json()["models"] == ["new"]
    rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert (first.choices[0].delta.role, rest.split()[:2]) == ("assistant", ["w1", "w2"])
    assert model_ids(gateway) == {"new"}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="old", messages=USER)


def test_reload_needs_the_admin_key(gateway: Gateway) -> None:
    http = gateway.http()
    assert http.post("/admin/v1/config/reload").status_code == 401
    assert http.post("/admin/v1/config/reload", headers={"Authorization": f"Bearer {TENANT_KEY}"}).status_code == 403
    assert http.post("/admin/v1/config/reload", headers={"Authorization": "Bearer sk-wrong-key"}).status_code == 401


def test_bad_config_is_rejected_and_old_keeps_serving(gateway: Gateway) -> None:
    edit(gateway, lambda c: c["models"]["old"]["deployments"].append({"provider": "opnai", "model": "m"}))
    response = gateway.http().post("/admin/v1/config/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert "models.old.deployments[1].provider: unknown provider 'opnai'" in error["message"]
    assert model_ids(gateway) == {"old"}
    gateway.config_path.write_text("models: [unclosed\n")
    gateway.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert model_ids(gateway) == {"old"}
    assert "SIGHUP reload rejected" in gateway.log()


def test_sighup_reloads(gateway: Gateway) -> None:
    edit(gateway, lambda c: c["models"].update({"extra": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]}}))
    gateway.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while model_ids(gateway) != {"old", "extra"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model_ids(gateway) == {"old", "extra"}
    assert gateway.openai().chat.completions.create(model="extra", messages=USER).choices[0].message.content


def test_concurrent_requests_during_reloads_never_fail(gateway: Gateway) -> None:
    edit(
        gateway, lambda c: c["models"].update({"steady": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]}})
    )
    admin = gateway.http()
    admin.post("/admin/v1/config/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    errors: list[Exception] = []
    stop = threading.Event()

    def hammer() -> None:
        client = gateway.openai()
        while not stop.is_set():
            try:
                client.chat.completions.create(model="steady", messages=USER)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(10):
        assert (
            admin.post("/admin/v1/config/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
        )
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(10)
    assert errors == []
