"""Test doubles for Switchyard's upstreams (real HTTP servers on 127.0.0.1)."""

from .openai_upstream import FakeOpenAI, RecordedRequest

__all__ = ["FakeOpenAI", "RecordedRequest"]
