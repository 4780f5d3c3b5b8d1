"""Which onnxruntime execution providers a model runs on, and what actually happened.

TensorRT (when its library is present) and CUDA are chosen when the installed onnxruntime build offers
them (`onnxruntime-gpu`, the `gpu` extra) and a GPU is visible; CPU is always the last resort. A model's
`execution_providers` list overrides the order. onnxruntime itself drops a provider that fails to
initialise, so the providers in use are read back from the session: every skip and fallback is logged
and reported in the model's metadata.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("switchyard.local_runtime")

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
GPU_PROVIDERS = frozenset({TENSORRT, CUDA})
ALIASES = {"tensorrt": TENSORRT, "trt": TENSORRT, "cuda": CUDA, "gpu": CUDA, "cpu": CPU}


@dataclass(frozen=True, slots=True)
class Environment:
    """What this machine offers, detected once (`detect_environment`) or given by tests."""

    available: tuple[str, ...]
    gpu_visible: bool
    tensorrt_present: bool


@dataclass(frozen=True, slots=True)
class ExecutionChoice:
    providers: tuple[str, ...]
    """In order of preference, always ending with CPU."""
    skipped: tuple[str, ...]
    """'<provider>: <reason>' for each preferred provider left out."""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    requested: tuple[str, ...]
    in_use: tuple[str, ...]
    fallback: str | None
    """Why the session does not run on the first preferred provider, if it does not."""

    @property
    def primary(self) -> str:
        return self.in_use[0] if self.in_use else CPU


def gpu_visible(env: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> bool:
    env = os.environ if env is None else env
    devices = env.get("CUDA_VISIBLE_DEVICES")
    if devices is not None and devices.strip() in {"", "-1", "none", "NoDevFiles"}:
        return False
    return (dev / "nvidiactl").exists() or any(dev.glob("nvidia[0-9]*"))


def detect_environment() -> Environment:
    import onnxruntime as ort

    return Environment(
        available=tuple(ort.get_available_providers()),
        gpu_visible=gpu_visible(),
        tensorrt_present=ctypes.util.find_library("nvinfer") is not None,
    )


def canonical(name: str) -> str:
    return ALIASES.get(name.lower(), name)


def choose_providers(preferred: Sequence[str] | None, environment: Environment) -> ExecutionChoice:
    """The providers to ask onnxruntime for, in order, and why any preferred one was left out."""
    if preferred is None:
        wanted = [TENSORRT, CUDA, CPU] if environment.tensorrt_present else [CUDA, CPU]
        explicit = False
    else:
        wanted = [canonical(p) for p in preferred]
        explicit = True
    chosen: list[str] = []
    skipped: list[str] = []
    for provider in dict.fromkeys(wanted):
        reason = None
        if provider not in environment.available:
            reason = "not in this onnxruntime build (install the 'gpu' extra for CUDA/TensorRT)"
        elif provider in GPU_PROVIDERS and not environment.gpu_visible:
            reason = "no GPU visible"
        elif provider == TENSORRT and not environment.tensorrt_present:
            reason = "TensorRT library (libnvinfer) not found"
        if reason is None:
            chosen.append(provider)
        elif explicit or provider in environment.available:
            # A CPU-only build asked for nothing: CPU there is the plan, not a fallback.
            skipped.append(f"{provider}: {reason}")
    if CPU not in chosen:
        chosen.append(CPU)
    return ExecutionChoice(tuple(chosen), tuple(skipped))


def report(choice: ExecutionChoice, in_use: Sequence[str], model: str) -> ExecutionReport:
    """Compare what was asked with what the session runs on; log any fallback."""
    in_use = tuple(in_use)
    fallback = None
    notes = list(choice.skipped)
    if in_use and in_use[0] != choice.providers[0]:
        notes.append(f"{choice.providers[0]}: failed to initialise, onnxruntime fell back to {in_use[0]}")
    if notes:
        fallback = "; ".join(notes)
        log.warning("model %s runs on %s (%s)", model, in_use[0] if in_use else CPU, fallback)
    else:
        log.info("model %s runs on %s", model, in_use[0] if in_use else CPU)
    return ExecutionReport(requested=choice.providers, in_use=in_use, fallback=fallback)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    intra_op_threads: int | None = None
    allow_spinning: bool = False


def create_session(path: Path, choice: ExecutionChoice, settings: SessionSettings) -> Any:
    """An onnxruntime InferenceSession on the chosen providers. If a GPU provider makes the session
    fail outright, it is created again on CPU (the report then shows the fallback)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if settings.intra_op_threads is not None:
        options.intra_op_num_threads = settings.intra_op_threads
    spin = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    # Asking for a provider this build lacks only makes onnxruntime warn and drop it: drop it here.
    available = set(ort.get_available_providers())
    providers = [p for p in choice.providers if p in available] or [CPU]
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        if choice.providers == (CPU,):
            raise
        log.warning("%s: session on %s failed (%s); retrying on CPU", path, choice.providers[0], exc)
        return ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
