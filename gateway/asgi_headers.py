"""A request header looked up in the ASGI scope, compiled (scripts/build_native.py): each request looks
up 3-4 of them (auth, tags, content length)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

_HEADER_INDEX = "switchyard.headers"
"""Where `header` keeps the scope's headers by name, built on its first call for the request."""


def header(scope: MutableMapping[str, Any], name: bytes) -> bytes | None:
    """The first value of header `name` (lower case, as ASGI gives names), or None."""
    index = scope.get(_HEADER_INDEX)
    if index is None:
        # Built in C from the end, so a repeated header keeps its first value. A request looks up 3-4
        # headers, most of them absent: a scan of the SDK's dozen headers each time cost 3x this.
        headers = scope["headers"]
        index = scope[_HEADER_INDEX] = dict(reversed(headers if isinstance(headers, list) else list(headers)))
    value = index.get(name)
    return None if value is None else bytes(value)
