"""The request log's timestamp is `datetime.isoformat(timespec="milliseconds")`, built faster."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.request_log import _iso_ms


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_the_timestamp_is_datetimes_own(ts: float) -> None:
    assert _iso_ms(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def test_rounding_up_to_the_next_second_and_back() -> None:
    for ts in (1_700_000_000.9999996, 1_700_000_001.0, 1_700_000_000.5, 59.9995, 0.0):
        assert _iso_ms(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
