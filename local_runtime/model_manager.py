"""The models of one repository, each serving one version, swapped atomically.

A reload (explicit, or the file watcher noticing a change) loads and warms up the version to serve
in a thread while the current one keeps serving; then the model's pointer moves to the new version
in one step. Requests already queued on the old version finish there; the old batcher is then
drained and its sessions released. A version that fails to load leaves the old one serving, and
the failure is kept in the model's status (its files are not retried until they change).

The watcher polls file sizes and mtimes every `watch_interval` seconds and acts on a change once it
has been stable for one poll, so a version still being copied is not loaded half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from local_runtime.batcher import BatcherStats
from local_runtime.errors import ModelNotReady
from local_runtime.execution import Environment, create_session, detect_environment
from local_runtime.loading import LoadedModel, SessionFactory, prepare
from local_runtime.repository import Fingerprint, ModelEntry, fingerprint, read_model, scan_repository
from local_runtime.runners import EmbeddingResult
from providers.base import ServerLoad
from providers.errors import InvalidRequest, NotFound

log = logging.getLogger("switchyard.local_runtime")


class ModelState(StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ModelStatus:
    name: str
    kind: str | None
    state: ModelState
    serving_version: int | None
    versions: tuple[int, ...]
    execution_provider: str | None
    execution_providers: tuple[str, ...]
    execution_fallback: str | None
    error: str | None
    stats: BatcherStats | None

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "name": self.name,
            "kind": self.kind,
            "state": str(self.state),
            "serving_version": self.serving_version,
            "versions": list(self.versions),
            "execution_provider": self.execution_provider,
            "execution_providers": list(self.execution_providers),
            "execution_fallback": self.execution_fallback,
            "error": self.error,
            "queue": None
            if stats is None
            else {
                "queued": stats.queued,
                "running": stats.running,
                "batches": stats.batches,
                "requests": stats.requests,
                "mean_batch": round(stats.mean_batch, 2),
                "rejected": stats.rejected,
            },
        }


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    name: str
    changed: bool
    serving_version: int | None
    previous_version: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "changed": self.changed,
            "serving_version": self.serving_version,
            "previous_version": self.previous_version,
            "error": self.error,
        }


class _Slot:
    def __init__(self, name: str) -> None:
        self.name = name
        self.entry: ModelEntry | None = None
        self.serving: LoadedModel | None = None
        self.state = ModelState.LOADING
        self.error: str | None = None
        self.failed: Fingerprint | None = None
        self.seen: Fingerprint | None = None
        self.lock = asyncio.Lock()


class ModelManager:
    def __init__(
        self,
        repository: Path,
        *,
        models: Collection[str] | None = None,
        watch_interval: float | None = None,
        session_factory: SessionFactory = create_session,
        environment: Environment | None = None,
    ) -> None:
        self.repository = repository
        self._only = frozenset(models) if models is not None else None
        self._interval = watch_interval
        self._session_factory = session_factory
        self._environment = environment
        self._slots: dict[str, _Slot] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._unloading: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Load every model's latest version, then start the watcher (if an interval was given)."""
        if self._environment is None:
            self._environment = await asyncio.to_thread(detect_environment)
        await self.rescan(settle=False)
        if self._interval and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(self._interval), name="onnx-model-watcher")

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for slot in self._slots.values():
            if slot.serving is not None:
                await slot.serving.batcher.drain()
                slot.serving = None
        if self._unloading:
            await asyncio.gather(*self._unloading, return_exceptions=True)

    def names(self) -> list[str]:
        return sorted(self._slots)

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The serving version (or `version`, which must be the one serving). Raises `NotFound` for an
        unknown model or version, `ModelNotReady` while it is loading or after it failed to load."""
        slot = self._slots.get(name)
        if slot is None:
            raise NotFound(f"The model '{name}' is not in the local model repository.", code="model_not_found")
        serving = slot.serving
        if serving is None:
            reason = f": {slot.error}" if slot.error else ""
            raise ModelNotReady(f"The model '{name}' is not ready ({slot.state}){reason}")
        if version is not None and version != serving.version:
            raise NotFound(
                f"Version {version} of the model '{name}' is not loaded (serving version {serving.version}).",
                code="model_version_not_found",
            )
        return serving

    async def embed(self, name: str, texts: Sequence[str]) -> EmbeddingResult:
        """Embed `texts` with an embedding model, in chunks of its max_batch_size submitted together."""
        model = self.get(name)
        if model.spec.kind != "embedding":
            raise InvalidRequest(f"The model '{name}' is a {model.spec.kind} model, not an embedding model.")
        size = model.prepared.max_batch_size
        chunks = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        futures: list[asyncio.Future[EmbeddingResult]] = []
        try:
            for chunk in chunks:
                futures.append(model.batcher.submit(chunk, rows=len(chunk)))
            results = await asyncio.gather(*futures)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        if len(results) == 1:
            return results[0]
        vectors = np.concatenate([r.vectors for r in results])
        return EmbeddingResult(vectors, tuple(t for r in results for t in r.tokens))

    def load(self) -> ServerLoad:
        """Cheap enough for every request: healthy while some model serves; queue depths summed."""
        ready = queued = running = 0
        errors = []
        for slot in self._slots.values():
            if slot.error:
                errors.append(f"{slot.name}: {slot.error}")
            if slot.serving is not None:
                ready += 1
                stats = slot.serving.batcher.stats()
                queued += stats.queued
                running += stats.running
        error = "; ".join(errors) or (None if ready else "no model is ready")
        return ServerLoad(healthy=ready > 0, running=float(running), waiting=float(queued), error=error)

    def status(self) -> list[ModelStatus]:
        return [self.model_status(name) for name in self.names()]

    def model_status(self, name: str) -> ModelStatus:
        slot = self._slots.get(name)
        if slot is None:
            raise NotFound(f"The model '{name}' is not in the local model repository.", code="model_not_found")
        serving = slot.serving
        execution = serving.prepared.execution if serving else None
        spec = serving.spec if serving else (slot.entry.spec if slot.entry else None)
        return ModelStatus(
            name=name,
            kind=spec.kind if spec else None,
            state=slot.state,
            serving_version=serving.version if serving else None,
            versions=slot.entry.versions if slot.entry else (),
            execution_provider=execution.primary if execution else None,
            execution_providers=execution.in_use if execution else (),
            execution_fallback=execution.fallback if execution else None,
            error=slot.error,
            stats=serving.batcher.stats() if serving else None,
        )

    async def reload(self, name: str) -> ReloadOutcome:
        """Look at the model's files now; load and switch to the version to serve if they changed."""
        directory = self.repository / name
        plain = bool(name) and name == Path(name).name and not name.startswith(".")  # no "../elsewhere"
        if not plain or (self._only is not None and name not in self._only) or not directory.is_dir():
            if name in self._slots:
                return await self._remove(name)
            raise NotFound(f"The model '{name}' is not in the local model repository.", code="model_not_found")
        entry, stamp = await asyncio.to_thread(_read, directory)
        return await self._apply(entry, stamp, explicit=True)

    async def rescan(self, *, settle: bool = False) -> list[ReloadOutcome]:
        """Reconcile every model with the repository (what the watcher does on each poll)."""
        found = await asyncio.to_thread(_scan, self.repository, self._only)
        outcomes = []
        for entry, stamp in found:
            slot = self._slots.get(entry.name)
            if settle and (slot is None or slot.seen != stamp):
                self._slots.setdefault(entry.name, _Slot(entry.name)).seen = stamp
                continue  # act once the files have stayed the same for a whole poll
            outcomes.append(await self._apply(entry, stamp, explicit=False))
        present = {entry.name for entry, _ in found}
        for name in [n for n in self._slots if n not in present]:
            outcomes.append(await self._remove(name))
        return outcomes

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.rescan(settle=True)
            except Exception:
                log.exception("model repository watcher: scan of %s failed", self.repository)

    async def _apply(self, entry: ModelEntry, stamp: Fingerprint, *, explicit: bool) -> ReloadOutcome:
        slot = self._slots.setdefault(entry.name, _Slot(entry.name))
        async with slot.lock:
            slot.entry = entry
            slot.seen = stamp
            current = slot.serving
            previous = current.version if current else None
            if current is not None and current.prepared.fingerprint == stamp:
                return ReloadOutcome(entry.name, False, previous, previous)
            if not explicit and slot.failed == stamp:
                return ReloadOutcome(entry.name, False, previous, previous, slot.error)
            version = entry.latest
            try:
                if entry.spec is None or version is None:
                    raise ValueError(entry.error or "nothing to serve")
                assert self._environment is not None, "start() first"
                if current is None:
                    slot.state = ModelState.LOADING
                prepared = await asyncio.to_thread(
                    prepare, entry, version, self._environment, self._session_factory, stamp
                )
            except Exception as exc:
                invalid = entry.spec is None or version is None
                slot.error = str(exc) if invalid else f"version {version} failed to load: {exc}"
                slot.failed = stamp
                slot.state = ModelState.READY if current is not None else ModelState.FAILED
                kept = f"; still serving version {previous}" if current is not None else ""
                log.error("model %s: %s%s", entry.name, slot.error, kept)
                return ReloadOutcome(entry.name, False, previous, previous, slot.error)
            slot.serving = prepared.serve()
            slot.state = ModelState.READY
            slot.error = None
            slot.failed = None
            if current is not None:
                log.info("model %s: switched from version %s to %s", entry.name, previous, version)
                self._unload(current)
            return ReloadOutcome(entry.name, True, version, previous)

    async def _remove(self, name: str) -> ReloadOutcome:
        slot = self._slots[name]
        async with slot.lock:  # after any load in progress, so what it loaded is unloaded here
            if self._slots.get(name) is slot:
                del self._slots[name]
            previous = slot.serving.version if slot.serving else None
            if slot.serving is not None:
                log.info("model %s left the repository: unloading version %s", name, previous)
                self._unload(slot.serving)
                slot.serving = None
        return ReloadOutcome(name, previous is not None, None, previous)

    def _unload(self, model: LoadedModel) -> None:
        async def drain() -> None:
            await model.batcher.drain()
            log.info("model %s: version %s unloaded", model.name, model.version)

        task = asyncio.create_task(drain(), name=f"unload-{model.name}-v{model.version}")
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)


def _read(directory: Path) -> tuple[ModelEntry, Fingerprint]:
    entry = read_model(directory)
    return entry, fingerprint(entry)


def _scan(root: Path, only: Collection[str] | None) -> list[tuple[ModelEntry, Fingerprint]]:
    return [(entry, fingerprint(entry)) for entry in scan_repository(root, only)]
