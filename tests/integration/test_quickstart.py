"""`make demo`'s config: the mock model with the demo keys, no API key or external server needed."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import ROOT, UPSTREAM_KEY, start_gateway

DEMO_KEY = "sk-switchyard-demo"
ADMIN_KEY = "sk-switchyard-admin-demo"


def test_quickstart_serves_mock_with_demo_keys(tmp_path: Path) -> None:
    gateway = start_gateway(
        ROOT / "examples" / "quickstart.yaml",
        tmp_path / "quickstart.log",
        env={"SWITCHYARD_DATA_DIR": str(tmp_path / "data")},
    )
    try:
        client = gateway.openai(key=DEMO_KEY)
        assert {m.id for m in client.models.list()} == {"mock", "mock-embedding", "chat-default"}
        stream = client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "Hi!"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).endswith("Hi!")
        served = client.chat.completions.with_raw_response.create(
            model="chat-default", messages=[{"role": "user", "content": "x"}]
        )
        assert served.headers["x-switchyard-deployment"] == "mock/mock"
        assert len(client.embeddings.create(model="mock-embedding", input="hello").data[0].embedding) == 256
        admin = gateway.http().get("/admin/v1/deployments", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert admin.status_code == 200 and {d["kind"] for d in admin.json()["data"]} == {"mock"}
        tenant_on_admin = gateway.http().get("/admin/v1/deployments", headers={"Authorization": f"Bearer {DEMO_KEY}"})
        assert tenant_on_admin.status_code == 403
    finally:
        assert gateway.stop() == 0
    log = gateway.log()
    assert DEMO_KEY not in log and ADMIN_KEY not in log


def test_quickstart_adds_openai_when_its_key_is_set(tmp_path: Path, upstream: FakeOpenAI) -> None:
    env = {
        "SWITCHYARD_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
    }
    gateway = start_gateway(ROOT / "examples" / "quickstart.yaml", tmp_path / "quickstart.log", env=env)
    try:
        client = gateway.openai(key=DEMO_KEY)
        assert {"gpt-4o-mini", "text-embedding-3-small", "chat-default"} <= {m.id for m in client.models.list()}
        assert "claude-3-5-haiku" not in {m.id for m in client.models.list()}
        served = client.chat.completions.with_raw_response.create(
            model="chat-default", messages=[{"role": "user", "content": "x"}]
        )
        assert served.headers["x-switchyard-deployment"] == "openai/gpt-4o-mini"
        upstream.fail_next(1, 503)
        fallback = client.chat.completions.with_raw_response.create(
            model="chat-default", messages=[{"role": "user", "content": "x"}]
        )
        assert (fallback.headers["x-switchyard-deployment"], fallback.headers["x-switchyard-attempts"]) == (
            "mock/mock",
            "2",
        )
    finally:
        gateway.stop()
    assert UPSTREAM_KEY not in gateway.log()
