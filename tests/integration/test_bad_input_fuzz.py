"""Random JSON in every field a front door reads: a 4xx in OpenAI's (or Anthropic's) error JSON, or an
answer; never a 500, never a hang, never a traceback.

The gateway reads these fields itself (routing requirements, token estimates, stream options, tags)
before the upstream sees them, so a value of a type it did not expect must be refused, not crash a
handler. With the compiled request path in use (providers.native) this is also the check that no
typed function of it receives a value of another type: mypyc enforces annotations at run time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GatewayFactory, chat_and_embeddings
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
"""Any JSON value: what a field gets when the client sends garbage."""
TEXT = st.text(max_size=24)
TEXT_PART = st.fixed_dictionaries({"type": st.just("text"), "text": TEXT})
CHAT_MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "system", "assistant", "developer"]),
        "content": TEXT | st.lists(TEXT_PART, max_size=2),
    }
)
FUNCTION = st.fixed_dictionaries(
    {"name": st.sampled_from(["f", "lookup"]), "parameters": st.just({"type": "object", "properties": {}})},
    optional={"description": TEXT},
)


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half the time a value the field accepts (of some unusual shape), half the time garbage."""
    return valid | JSON


def mutations(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One to three fields of a valid body replaced: so a request that passes validation goes on to the
    routing, the estimates, the upstream and the stream with what it was given."""
    return st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: fields[name] for name in names})
    )


CHAT_FIELDS = {
    "messages": field(st.lists(CHAT_MESSAGE, min_size=1, max_size=3)),
    "stream": field(st.booleans()),
    "stream_options": field(st.fixed_dictionaries({"include_usage": st.booleans()})),
    "tools": field(st.lists(st.fixed_dictionaries({"type": st.just("function"), "function": FUNCTION}), max_size=2)),
    "tool_choice": field(st.sampled_from(["auto", "none", {"type": "function", "function": {"name": "f"}}])),
    "response_format": field(st.sampled_from([{"type": "text"}, {"type": "json_object"}])),
    "n": field(st.integers(1, 3)),
    "stop": field(TEXT | st.lists(TEXT, max_size=3)),
    "max_tokens": field(st.integers(1, 64)),
    "max_completion_tokens": field(st.integers(1, 64)),
    "temperature": field(st.floats(0, 2)),
    "metadata": field(st.dictionaries(st.text(min_size=1, max_size=8), TEXT, max_size=3)),
    "user": field(TEXT),
    "some_unknown_field": JSON,
}
ENDPOINTS: dict[str, tuple[str, dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, CHAT_FIELDS),
    "completions": (
        "/v1/completions",
        {"prompt": "hi"},
        {
            "prompt": field(TEXT | st.lists(TEXT, min_size=1, max_size=3)),
            "stream": field(st.booleans()),
            "max_tokens": field(st.integers(1, 64)),
            "n": field(st.integers(1, 3)),
            "stop": field(TEXT),
            "echo": field(st.booleans()),
        },
    ),
    "embeddings": (
        "/v1/embeddings",
        {"input": "hi"},
        {
            "input": field(TEXT | st.lists(TEXT, min_size=1, max_size=3) | st.lists(st.integers(0, 5000), min_size=1)),
            "encoding_format": field(st.sampled_from(["float", "base64"])),
            "dimensions": field(st.integers(1, 8)),
        },
    ),
    "messages": (
        "/v1/messages",
        {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        {
            "messages": field(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "role": st.sampled_from(["user", "assistant"]),
                            "content": TEXT | st.lists(TEXT_PART, max_size=2),
                        }
                    ),
                    min_size=1,
                    max_size=3,
                )
            ),
            "max_tokens": field(st.integers(1, 64)),
            "system": field(TEXT | st.lists(TEXT_PART, max_size=2)),
            "stream": field(st.booleans()),
            "tools": field(st.just([{"name": "f", "input_schema": {"type": "object"}}])),
            "tool_choice": field(st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "f"}])),
            "stop_sequences": field(st.lists(TEXT, max_size=2)),
            "metadata": field(st.fixed_dictionaries({"user_id": TEXT})),
        },
    ),
    "responses": (
        "/v1/responses",
        {"input": "hi"},
        {
            "input": field(
                TEXT | st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": TEXT}), min_size=1)
            ),
            "instructions": field(TEXT),
            "tools": field(st.just([{"type": "function", "name": "f", "parameters": {"type": "object"}}])),
            "stream": field(st.booleans()),
            "max_output_tokens": field(st.integers(16, 64)),
            "text": field(st.just({"format": {"type": "text"}})),
            "tool_choice": field(st.sampled_from(["auto", "none"])),
        },
    ),
}
TAGS = st.none() | st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip)


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(**chat_and_embeddings(upstream))


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> httpx.Client:
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        yield http


def body_of(endpoint: str, base: dict[str, Any], drawn: dict[str, Any]) -> dict[str, Any]:
    return {"model": "embed" if endpoint == "embeddings" else "chat", **base, **drawn}


def check(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 600
    if response.status_code >= 400:
        payload = response.json()
        error = payload["error"]
        assert isinstance(error.get("message"), str) and error["message"]
        assert "Traceback" not in error["message"]
        if payload.get("type") != "error":  # Anthropic's shape is {"type": "error", "error": {type, message}}
            assert "type" in error and "code" in error
    elif response.headers.get("content-type", "").startswith("text/event-stream"):
        assert "Internal error" not in response.text


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_random_values_in_the_fields_the_gateway_reads_never_cause_a_500(endpoint: str, client: httpx.Client) -> None:
    path, base, fields = ENDPOINTS[endpoint]

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(drawn=mutations(fields), tags=TAGS)
    def one(drawn: dict[str, Any], tags: str | None) -> None:
        headers = {"Authorization": f"Bearer {TENANT_KEY}"}
        if tags is not None:
            headers["x-switchyard-tags"] = tags
        check(client.post(path, json=body_of(endpoint, base, drawn), headers=headers))

    one()


def test_a_body_that_is_not_an_object_is_a_400(client: httpx.Client) -> None:
    for path, _, _ in ENDPOINTS.values():
        for raw in (b"[]", b"1", b'"x"', b"null", b"{", b"\xff\xfe"):
            response = client.post(
                path, content=raw, headers={"Authorization": f"Bearer {TENANT_KEY}", "Content-Type": "application/json"}
            )
            assert response.status_code == 400, (path, raw, response.text)
            check(response)
