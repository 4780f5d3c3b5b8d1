"""Header lookup on an ASGI scope."""

from __future__ import annotations

from gateway.asgi_io import header


def test_first_value_of_a_repeated_header_wins_and_absent_is_none() -> None:
    scope = {"headers": [(b"authorization", b"Bearer one"), (b"x-a", b"1"), (b"authorization", b"Bearer two")]}
    assert header(scope, b"authorization") == b"Bearer one"
    assert header(scope, b"x-a") == b"1"
    assert header(scope, b"x-missing") is None
    assert header(scope, b"authorization") == b"Bearer one"  # again, from the index built by the first call


def test_headers_given_as_any_iterable() -> None:
    scope = {"headers": ((name, value) for name, value in [(b"content-length", b"12"), (b"content-length", b"99")])}
    assert header(scope, b"content-length") == b"12"
    assert type(header(scope, b"content-length")) is bytes
