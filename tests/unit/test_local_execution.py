"""Choosing onnxruntime execution providers, and reporting fallbacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from local_runtime.execution import (
    CPU,
    CUDA,
    TENSORRT,
    Environment,
    choose_providers,
    gpu_visible,
    report,
)

CPU_BUILD = (CPU,)
GPU_BUILD = (TENSORRT, CUDA, CPU)


def env(available: tuple[str, ...], gpu: bool, trt: bool = False) -> Environment:
    return Environment(available=available, gpu_visible=gpu, tensorrt_present=trt)


def test_cpu_build_runs_on_cpu_without_complaint() -> None:
    choice = choose_providers(None, env(CPU_BUILD, gpu=False))
    assert choice.providers == (CPU,) and choice.skipped == ()


def test_gpu_build_with_a_gpu_prefers_cuda_then_cpu() -> None:
    assert choose_providers(None, env(GPU_BUILD, gpu=True)).providers == (CUDA, CPU)


def test_tensorrt_is_first_only_where_its_library_is_present() -> None:
    assert choose_providers(None, env(GPU_BUILD, gpu=True, trt=True)).providers == (TENSORRT, CUDA, CPU)


def test_gpu_build_without_a_visible_gpu_falls_back_to_cpu_and_says_why() -> None:
    choice = choose_providers(None, env(GPU_BUILD, gpu=False))
    assert choice.providers == (CPU,)
    assert choice.skipped == (f"{CUDA}: no GPU visible",)


def test_an_explicit_preference_that_cannot_be_met_is_reported() -> None:
    choice = choose_providers(["tensorrt", "cuda"], env(CPU_BUILD, gpu=False))
    assert choice.providers == (CPU,)
    assert len(choice.skipped) == 2 and all("not in this onnxruntime build" in s for s in choice.skipped)
    assert choose_providers(["cpu"], env(GPU_BUILD, gpu=True)).providers == (CPU,)
    assert choose_providers(["CUDAExecutionProvider"], env(GPU_BUILD, gpu=True)).providers == (CUDA, CPU)
    trt = choose_providers(["tensorrt", "cuda"], env(GPU_BUILD, gpu=True, trt=False))
    assert trt.providers == (CUDA, CPU) and "libnvinfer" in trt.skipped[0]


def test_report_logs_when_onnxruntime_fell_back(caplog: pytest.LogCaptureFixture) -> None:
    choice = choose_providers(None, env(GPU_BUILD, gpu=True))
    with caplog.at_level(logging.INFO, logger="switchyard.local_runtime"):
        fell_back = report(choice, [CPU], "m v1")
        fine = report(choice, [CUDA, CPU], "m v1")
    assert fell_back.primary == CPU and fell_back.fallback is not None and "fell back to" in fell_back.fallback
    assert fine.primary == CUDA and fine.fallback is None
    assert any(r.levelno == logging.WARNING and "runs on CPUExecutionProvider" in r.message for r in caplog.records)
    assert any(r.levelno == logging.INFO and "runs on CUDAExecutionProvider" in r.message for r in caplog.records)


def test_gpu_visibility(tmp_path: Path) -> None:
    assert not gpu_visible({}, tmp_path)
    (tmp_path / "nvidia0").touch()
    assert gpu_visible({}, tmp_path)
    assert gpu_visible({"CUDA_VISIBLE_DEVICES": "0,1"}, tmp_path)
    assert not gpu_visible({"CUDA_VISIBLE_DEVICES": ""}, tmp_path)
    assert not gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"}, tmp_path)
