"""The per-request records keep what frozen dataclasses gave them: repr, equality, hashing, replace()
and, when compiled, attributes that cannot be set again."""

from __future__ import annotations

import inspect

import pytest

from policies.capabilities import Requirements
from policies.frozen_record import FrozenRecord
from policies.observations import RequestView
from policies.retry import AttemptWindow
from policies.router import Decision
from policies.strategies.ranking import Ranking
from providers.base import Completion, Deadlines, Endpoint, UpstreamCall, Usage
from providers.deadline import DeadlineWheel

RANKING = Ranking(order=("a", "b"), scores=(1.0, None), why=("cheap", "no price"))
SAMPLES: list[FrozenRecord] = [
    Requirements(chat=True, streaming=True, max_output=20, prompt_bytes=300),
    RequestView(requirements=Requirements(tools=True), max_output_tokens=5, tenant="acme", deny=frozenset({"x"})),
    AttemptWindow(connect_timeout=1.0, first_byte_at=2.0, total_at=3.0),
    RANKING,
    Decision(
        strategy="priority",
        order=("a", "b"),
        max_attempts=2,
        ranking=RANKING,
        excluded=(("c", "is not a chat model"),),
        unhealthy=frozenset(),
        deployments=(),
    ),
    Usage(prompt_tokens=3, completion_tokens=4, cached_tokens=1, estimated=True),
    Deadlines(connect_timeout=1.0, first_byte_at=2.0, total_at=3.0, timer=DeadlineWheel()),
    UpstreamCall(
        endpoint=Endpoint.CHAT,
        body={"model": "m"},
        model="gpt-4o-mini",
        stream=True,
        client_wants_usage=False,
        deadlines=Deadlines(1.0, 2.0, 3.0),
        request_id="req-1",
        extra_headers=(("traceparent", "00-x"),),
    ),
    Completion(body=b"{}", usage=Usage(1, 2)),
]
COMPILED = not inspect.isfunction(Requirements.__init__)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_fields_are_the_constructor_and_the_values_round_trip(record: FrozenRecord) -> None:
    values = {name: getattr(record, name) for name in record._fields}
    copy = type(record)(**values)
    assert copy == record and copy is not record
    if not any(isinstance(value, dict) for value in values.values()):  # as a frozen dataclass's hash
        assert hash(copy) == hash(record)
    assert repr(copy) == repr(record)
    assert repr(record).startswith(f"{type(record).__name__}({record._fields[0]}=")
    assert not hasattr(record, "__dict__")  # slots, compiled or not
    if not COMPILED:  # the interpreted __init__ can be read: it takes exactly the fields
        assert tuple(inspect.signature(type(record)).parameters) == record._fields


def test_replace_changes_only_what_it_names() -> None:
    needs = Requirements(chat=True, max_output=20)
    other = needs.replace(streaming=True)
    assert (other.chat, other.streaming, other.max_output) == (True, True, 20)
    assert not needs.streaming
    assert other != needs
    with pytest.raises(TypeError, match="no field 'stream'"):
        needs.replace(stream=True)


def test_records_of_different_classes_or_values_differ() -> None:
    window = AttemptWindow(connect_timeout=1.0, first_byte_at=2.0, total_at=3.0)
    assert window != AttemptWindow(connect_timeout=1.0, first_byte_at=2.0, total_at=4.0)
    assert window != (1.0, 2.0, 3.0)
    assert len({window, AttemptWindow(connect_timeout=1.0, first_byte_at=2.0, total_at=3.0)}) == 1


def test_the_provider_records_keep_their_defaults_and_read_openai_usage() -> None:
    assert Usage() == Usage(0, 0, 0, 0, False, 0) and Usage(2, 3).total_tokens == 5
    usage = Usage.from_openai(
        {"prompt_tokens": 7, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 5}}
    )
    assert usage == Usage(prompt_tokens=7, completion_tokens=2, cached_tokens=5)
    assert Usage.from_openai(None) is None and Usage.from_openai([1]) is None
    assert usage.to_openai() == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    first, second = Deadlines(1.0, 2.0, 3.0), Deadlines(1.0, 2.0, 3.0)
    assert first.timer is not second.timer  # each gets its own wheel, as the dataclass's default_factory
    call = UpstreamCall(Endpoint.CHAT, {}, "m", False, False, first, "r")
    assert call.extra_headers == ()


def test_a_ranking_needs_one_score_and_reason_per_name() -> None:
    with pytest.raises(ValueError, match="one score and one reason"):
        Ranking(order=("a",), scores=(), why=("x",))


@pytest.mark.skipif(not COMPILED, reason="interpreted, only mypy keeps Final attributes from being set")
def test_compiled_records_refuse_a_second_assignment() -> None:
    needs = Requirements(chat=True)
    with pytest.raises(AttributeError):
        needs.chat = False  # type: ignore[misc]
    assert needs.chat
    usage = Usage(prompt_tokens=1)
    with pytest.raises(AttributeError):
        usage.prompt_tokens = 2  # type: ignore[misc]
    assert usage.prompt_tokens == 1
