from __future__ import annotations

from pathlib import Path

import pytest

from providers.vllm import parse_metrics, server_root

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vllm"


def test_v1_engine_metrics_summed_over_engines() -> None:
    load = parse_metrics((FIXTURES / "metrics_v1.txt").read_text())
    assert (load.healthy, load.running, load.waiting, load.kv_cache_usage) == (True, 12.0, 4.0, 0.61)


def test_v0_metrics_use_gpu_cache_usage() -> None:
    load = parse_metrics((FIXTURES / "metrics_v0.txt").read_text())
    assert (load.running, load.waiting, load.kv_cache_usage) == (2.0, 9.0, 0.93)


@pytest.mark.parametrize("text", ["", "# just a comment\n", "process_cpu_seconds_total 12.0\n"])
def test_scrape_without_vllm_metrics_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_metrics(text)


def test_garbage_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_metrics('vllm:num_requests_running{engine="0" 7.0\n{{{\n')


def test_server_root() -> None:
    assert server_root("http://gpu-1:8000/v1") == "http://gpu-1:8000"
    assert server_root("http://gpu-1:8000/v1/") == "http://gpu-1:8000"
    assert server_root("http://gpu-1:8000") == "http://gpu-1:8000"
