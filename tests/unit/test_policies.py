from __future__ import annotations

from policies.candidates import Timeouts
from policies.retry import attempt_window, should_try_next


def test_attempt_window_clips_to_overall_deadline() -> None:
    timeouts = Timeouts(connect=2, first_token=10, total=60, deadline=30)
    window = attempt_window(now=100.0, started=100.0, timeouts=timeouts)
    assert window is not None
    assert (window.connect_timeout, window.first_byte_at, window.total_at) == (2, 110.0, 130.0)
    late = attempt_window(now=125.0, started=100.0, timeouts=timeouts)
    assert late is not None and late.total_at == 130.0 and late.first_byte_at == 130.0
    assert attempt_window(now=130.0, started=100.0, timeouts=timeouts) is None


def test_should_try_next() -> None:
    assert should_try_next(retryable=True, attempts_made=1, max_attempts=3, remaining=1)
    assert not should_try_next(retryable=False, attempts_made=1, max_attempts=3, remaining=1)
    assert not should_try_next(retryable=True, attempts_made=3, max_attempts=3, remaining=1)
    assert not should_try_next(retryable=True, attempts_made=1, max_attempts=3, remaining=0)
