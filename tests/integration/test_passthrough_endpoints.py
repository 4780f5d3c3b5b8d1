"""Images, moderations and audio relayed to OpenAI-compatible upstreams with routing and failover."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import openai
import pytest
import yaml

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        server={"max_body_bytes": "8MiB"},
        providers={"fake": upstream_provider(upstream), "mock": {"kind": "mock"}},
        models={
            "img": {"deployments": [{"provider": "fake", "model": "gpt-image-1"}]},
            "img-priced": {
                "deployments": [{"provider": "fake", "model": "gpt-image-1", "price": {"per_image": 0.04, "input": 5}}]
            },
            "stt-priced": {
                "deployments": [{"provider": "fake", "model": "whisper-1", "price": {"per_audio_minute": 0.006}}]
            },
            "mod": {"deployments": [{"provider": "fake", "model": "omni-moderation-latest"}]},
            "stt": {
                "deployments": [
                    {"provider": "fake", "model": "whisper-a+status-500"},
                    {"provider": "fake", "model": "whisper-b"},
                ]
            },
            "mock-only": {"deployments": [{"provider": "mock"}]},
        },
    )


def uploads_dir(gateway: Gateway) -> Path:
    return Path(yaml.safe_load(gateway.config_path.read_text())["server"]["data_dir"]) / "uploads"


def test_images_and_moderations(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    image = gateway.openai().images.generate(model="img", prompt="a red square", n=2)
    assert len(image.data) == 2 and image.data[0].b64_json
    assert upstream.requests[-1].body == {"model": "gpt-image-1", "prompt": "a red square", "n": 2}
    moderation = gateway.openai().moderations.create(model="mod", input=["hello", "kill it"])
    assert [r.flagged for r in moderation.results] == [False, True]


def test_audio_upload_fails_over_with_the_same_file(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    audio = os.urandom(3 * 1024 * 1024)
    raw = gateway.openai().audio.transcriptions.with_raw_response.create(
        model="stt", file=("speech.wav", audio, "audio/wav"), language="en"
    )
    assert raw.parse().text == f"fake transcript of {len(audio)} bytes"
    assert (raw.headers["x-switchyard-deployment"], raw.headers["x-switchyard-attempts"]) == ("fake/whisper-b", "2")
    first, second = upstream.requests
    assert (first.body["model"], second.body["model"]) == ("whisper-a+status-500", "whisper-b")
    digest = hashlib.sha256(audio).hexdigest()
    assert first.body["file"]["sha256"] == second.body["file"]["sha256"] == digest
    assert second.body["language"] == "en"
    assert list(uploads_dir(gateway).iterdir()) == [], "the spooled upload is removed"
    http = gateway.http(headers={"Authorization": f"Bearer {TENANT_KEY}"})
    text = http.post(
        "/v1/audio/transcriptions", data={"model": "stt", "response_format": "text"}, files={"file": b"abc"}
    )
    assert text.headers["content-type"].startswith("text/plain") and text.text == "fake transcript of 3 bytes\n"
    translated = http.post("/v1/audio/translations", data={"model": "stt"}, files={"file": ("y.wav", b"abcd")})
    assert translated.json() == {"text": "fake transcript of 4 bytes"}
    assert upstream.requests[-1].path == "/v1/audio/translations"


def test_upload_errors(gateway: Gateway) -> None:
    http = gateway.http(headers={"Authorization": f"Bearer {TENANT_KEY}"})
    missing = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"abc")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    too_big = http.post(
        "/v1/audio/transcriptions", data={"model": "stt"}, files={"file": ("a.wav", b"x" * (9 * 2**20))}
    )
    assert too_big.status_code == 413
    not_multipart = http.post("/v1/audio/transcriptions", json={"model": "stt"})
    assert not_multipart.status_code == 400
    assert list(uploads_dir(gateway).iterdir()) == []
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().images.generate(model="mock-only", prompt="x")
    assert info.value.code == "unsupported_endpoint"


def test_images_and_audio_minutes_are_priced(gateway: Gateway, redis_url: str) -> None:
    import redis

    from tests.integration.ledger_support import wait_events

    store = redis.Redis.from_url(redis_url)
    store.delete("sy:{acme}:usage")
    image = gateway.openai().images.with_raw_response.generate(model="img-priced", prompt="two squares", n=2)
    audio = gateway.openai().audio.transcriptions.with_raw_response.create(
        model="stt-priced", file=("talk.wav", b"\0" * 32000 * 90, "audio/wav"), response_format="verbose_json"
    )
    found = {e["request_id"]: e for e in wait_events(store, "acme", 2)}
    store.close()
    images = found[image.headers["x-request-id"]]
    assert images["images"] == 2
    assert images["cost_micro_usd"] == 2 * 40_000 + 7 * 5  # two images plus 7 input tokens at $5/M
    speech = found[audio.headers["x-request-id"]]
    assert speech["audio_seconds"] == 90.0
    assert speech["cost_micro_usd"] == 9_000  # 1.5 minutes at $0.006
