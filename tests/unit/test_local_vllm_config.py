"""vLLM server entries (command line, provider config) and the rotating log file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from local_runtime.rotating_log import RotatingLog
from local_runtime.vllm_supervisor import LocalRuntimeConfig, VLLMServerConfig


def test_argv_and_the_provider_the_gateway_routes_to() -> None:
    server = VLLMServerConfig(
        name="llama",
        model="meta-llama/Llama-3.1-8B-Instruct",
        port=8001,
        host="0.0.0.0",
        args=["--max-model-len", "8192"],
        api_key="sk-local",
    )
    assert server.argv() == [
        "vllm",
        "serve",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--host",
        "0.0.0.0",
        "--port",
        "8001",
        "--api-key",
        "sk-local",
        "--max-model-len",
        "8192",
    ]
    provider = server.provider_config()
    assert provider.kind == "vllm" and provider.base_url == "http://127.0.0.1:8001/v1"
    assert provider.api_key == "sk-local" and provider.health_url == "http://127.0.0.1:8001/health"


def test_durations_and_limits_are_validated() -> None:
    server = VLLMServerConfig.model_validate({"name": "a", "model": "m", "port": 9000, "drain_grace": "500ms"})
    assert server.drain_grace == 0.5
    with pytest.raises(ValidationError, match="port"):
        VLLMServerConfig(name="a", model="m", port=0)
    with pytest.raises(ValidationError, match="name"):
        VLLMServerConfig(name="bad name", model="m", port=9000)


def test_servers_need_distinct_names_and_ports() -> None:
    servers = [{"name": "a", "model": "m", "port": 9000}, {"name": "b", "model": "m", "port": 9000}]
    with pytest.raises(ValidationError, match="distinct ports; repeated: 9000"):
        LocalRuntimeConfig.model_validate({"vllm": servers})
    assert LocalRuntimeConfig().vllm == []


def test_rotating_log_keeps_n_backups_and_splits_on_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "srv.log"
    log = RotatingLog(path, max_bytes=20, backups=2)
    for index in range(12):
        log.write(f"line {index:02d}\n".encode())  # 8 bytes each: two lines per file
    log.close()
    assert path.read_text() == "line 10\nline 11\n"
    assert (tmp_path / "logs" / "srv.log.1").read_text() == "line 08\nline 09\n"
    assert (tmp_path / "logs" / "srv.log.2").read_text() == "line 06\nline 07\n"
    assert not (tmp_path / "logs" / "srv.log.3").exists()


def test_rotating_log_splits_a_chunk_at_its_last_newline_and_appends_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "srv.log"
    log = RotatingLog(path, max_bytes=10, backups=1)
    log.write(b"aaaa\nbbbb\ncccc\n")
    log.close()
    assert (tmp_path / "srv.log.1").read_bytes() == b"aaaa\nbbbb\n"
    assert path.read_bytes() == b"cccc\n"
    log = RotatingLog(path, max_bytes=10, backups=1)
    log.write(b"x" * 25)  # one line longer than a file: split
    log.close()
    assert path.read_bytes() == b"x" * 5
