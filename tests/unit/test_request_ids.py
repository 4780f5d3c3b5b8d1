"""Request ids never repeat: within a process, across processes, past the counter's wrap."""

from __future__ import annotations

import re

from gateway.request_ids import RequestIds


def test_ids_are_24_hex_digits_and_unique() -> None:
    ids = RequestIds()
    seen = [ids.next() for _ in range(10_000)]
    assert len(set(seen)) == len(seen)
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in seen)


def test_two_generators_do_not_share_ids() -> None:
    first, second = RequestIds(), RequestIds()
    assert not {first.next() for _ in range(1000)} & {second.next() for _ in range(1000)}


def test_the_counter_wraps_within_its_digits() -> None:
    ids = RequestIds()
    ids._count = (1 << 48) - 2
    assert ids.next().endswith("f" * 12)
    assert ids.next().endswith("0" * 12)


def test_the_counter_is_zero_padded() -> None:
    ids = RequestIds()
    ids._count = 0x0A
    assert ids.next() == ids._prefix + "00000000000b"
