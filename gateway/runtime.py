"""Everything the gateway builds at start-up and tears down at shutdown, passed by reference.

Holds the current `GatewayState` (swapped atomically on reload), the shared aiohttp session, the
store, the usage ledger and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from redis.exceptions import RedisError

from gateway import request_log
from gateway.admission import Admission
from gateway.alerts import AlertSink
from gateway.archive import PostgresSink
from gateway.auth import Principal, credential_digest
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.key_store import KeyStore
from gateway.local_metrics import OnnxCollector
from gateway.metrics import Metrics
from gateway.request_ids import RequestIds
from gateway.routing import Router
from gateway.settings import Settings
from gateway.state import GatewayState, build_state
from gateway.store import Store, open_store
from gateway.tracing import Tracing
from gateway.usage_archive import UsageArchive, prune_stream
from gateway.usage_ledger import TENANTS, UsageLedger
from local_runtime.vllm_supervisor import VLLMSupervisor
from providers import native
from providers.aiohttp_connector import upstream_session
from providers.deadline import DeadlineWheel
from providers.errors import AuthenticationFailed, PermissionDenied
from providers.idle_work import idle_work

log = logging.getLogger("switchyard")

_PRUNE_EVERY = 600.0


def _consumer_name(data_dir: Path) -> str:
    """Stable across restarts of the same gateway (host and data directory), so a restarted gateway takes
    up its own pending archive entries at once instead of after the idle timeout."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "host"
    return f"{host}-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]}"


class Runtime:
    def __init__(self, settings: Settings, config: GatewayConfig | None = None, span_exporter: Any = None) -> None:
        self.settings = settings
        self._span_exporter = span_exporter
        self.tracing: Tracing | None = None
        """Set when `tracing.enabled` (or a span exporter is given); None costs nothing per request."""
        self._initial_config = config
        self.metrics = Metrics(settings.env.get("PROMETHEUS_MULTIPROC_DIR"))
        self.request_ids = RequestIds()
        self.deadlines = DeadlineWheel()
        """Every attempt's first-byte and total deadlines (made again in the lifespan: one per event loop)."""
        self.metrics.add_collector(OnnxCollector(lambda: self._state.providers.values() if self._state else ()))
        self.draining = False
        self.in_flight = 0
        self._reload_lock = asyncio.Lock()
        self._state: GatewayState | None = None
        self._session: aiohttp.ClientSession | None = None
        self._store: Store | None = None
        self._ledger: UsageLedger | None = None
        self._keys: KeyStore | None = None
        self._admission: Admission | None = None
        self._alerts: AlertSink | None = None
        self._archive: UsageArchive | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._router: Router | None = None
        self._archive_postgres: PostgresSink | None = None
        self._supervisor: VLLMSupervisor | None = None

    @property
    def state(self) -> GatewayState:
        assert self._state is not None, "used before start-up"
        return self._state

    @property
    def store(self) -> Store:
        assert self._store is not None, "used before start-up"
        return self._store

    @property
    def ledger(self) -> UsageLedger:
        assert self._ledger is not None, "used before start-up"
        return self._ledger

    @property
    def keys(self) -> KeyStore:
        assert self._keys is not None, "used before start-up"
        return self._keys

    @property
    def supervisor(self) -> VLLMSupervisor | None:
        """The supervised local vLLM servers (`local_runtime.vllm`), if any."""
        return self._supervisor

    @property
    def router(self) -> Router:
        assert self._router is not None, "used before start-up"
        return self._router

    @property
    def admission(self) -> Admission:
        assert self._admission is not None, "used before start-up"
        return self._admission

    @property
    def archive_dir(self) -> Path:
        return self.archive_dir_for(self.state.config)

    @property
    def archive_postgres(self) -> PostgresSink | None:
        """The PostgreSQL archive (`ledger.archive_postgres_dsn`), for the reports; None: files only."""
        return self._archive_postgres

    @staticmethod
    def archive_dir_for(config: GatewayConfig) -> Path:
        return Path(config.ledger.archive_dir or Path(config.server.data_dir) / "ledger")

    async def _prune_streams(self, config: GatewayConfig) -> None:
        """Trim archived usage events older than `ledger.retention.stream` from Redis, now and then."""
        while True:
            await asyncio.sleep(_PRUNE_EVERY)
            try:
                for tenant in await self.store.redis.smembers(TENANTS):
                    name = tenant.decode() if isinstance(tenant, bytes) else str(tenant)
                    await prune_stream(self.store.redis, name, config.ledger.retention.stream)
            except (RedisError, OSError) as exc:
                log.warning("usage stream pruning skipped (%s)", type(exc).__name__)

    @property
    def started(self) -> bool:
        return self._state is not None

    async def authenticate(self, credentials: bytes | None) -> Principal:
        """The principal of an `Authorization: Bearer <key>` (or `x-api-key` / `api-key`) value; raises
        `AuthenticationFailed` (401) for a missing or unknown key."""
        digest = credential_digest(credentials)
        return self.state.keys.find(digest) or await self.keys.lookup(digest, time.monotonic())

    async def require_admin(self, credentials: bytes | None) -> Principal:
        """Like `authenticate`, but a tenant key raises `PermissionDenied` (403)."""
        if credentials is None:
            raise AuthenticationFailed("Missing admin key.", code="missing_api_key")
        principal = await self.authenticate(credentials)
        if not principal.is_admin:
            raise PermissionDenied("This endpoint needs the admin key.")
        return principal

    def load(self) -> GatewayConfig:
        return load_config(self.settings.config_path, self.settings.env)

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        config = self._initial_config or self.load()
        self.deadlines = DeadlineWheel()
        data_dir = Path(config.server.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._session = upstream_session(limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300)
        request_log.configure(config.server.request_log)
        if config.tracing.enabled or self._span_exporter is not None:
            self.tracing = Tracing(config.tracing, self._span_exporter)
        self._alerts = AlertSink(self.metrics, self._session, config.ledger.alert_webhook)
        try:
            if config.local_runtime.vllm:
                self._supervisor = VLLMSupervisor(config.local_runtime.vllm)
                await self._supervisor.start()
            self._router = Router(config.routing, on_alert=self._alerts.event)
            self._state = build_state(config, self._session)
            await self._state.start()
            self._store = await open_store(config.store.redis_url, data_dir)
            redis = self._store.redis
            self._ledger = UsageLedger(redis, data_dir / "spool", config.ledger.retention, self._alerts.emit)
            await self._ledger.start()
            self._keys = KeyStore(redis, config.ledger.key_cache_ttl)
            await self._keys.start()
            self._admission = Admission(redis, self.metrics, leases=config.ledger.admission_leases)
            await self._admission.start()
            if config.ledger.archive_postgres_dsn:
                self._archive_postgres = PostgresSink(config.ledger.archive_postgres_dsn)
                await self._archive_postgres.start()  # never raises: logs, and the archive retries
            if config.ledger.archive:
                sink = self._archive_postgres or self.archive_dir_for(config)
                self._archive = UsageArchive(redis, sink, _consumer_name(data_dir))
                await self._archive.start()
                self._pruner = asyncio.create_task(self._prune_streams(config), name="usage-stream-pruner")
        except BaseException:
            await self._close()
            raise
        log.info(
            "switchyard ready: %d models, store %s, compiled request path %s",
            len(self._state.models),
            self._store.description,
            native.status(),
        )
        try:
            yield
        finally:
            await self._close()

    async def _close(self) -> None:
        idle_work.run()  # the accounting of the last requests, before the ledger closes
        if self._admission is not None:
            await self._admission.aclose()
        if self._ledger is not None:
            await self._ledger.aclose()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        if self._archive is not None:
            await self._archive.aclose()
        if self._archive_postgres is not None:
            await self._archive_postgres.aclose()
        if self._keys is not None:
            await self._keys.aclose()
        if self._alerts is not None:
            await self._alerts.aclose()
        if self._store is not None:
            await self._store.aclose()
        if self._state is not None:
            await self._state.aclose()
        if self._supervisor is not None:
            await self._supervisor.aclose()
        if self._session is not None:
            await self._session.close()
        if self.tracing is not None:
            self.tracing.shutdown()
        request_log.flush()

    async def reload(self) -> GatewayState:
        """Load the config file again and swap it in; a bad file raises ConfigError and changes nothing."""
        async with self._reload_lock:
            try:
                config = await asyncio.to_thread(self.load)
                assert self._session is not None
                new_state = build_state(config, self._session, self.state.providers)
            except ConfigError:
                self.metrics.config_reloads.labels("rejected").inc()
                raise
            old = self.state
            if config.store != old.config.store or config.server != old.config.server:
                log.warning("server/store settings changed: they take effect after a restart")
            await new_state.start()
            self.router.configure(config.routing)
            self._state = new_state
            if self._supervisor is not None:
                await self._supervisor.reconcile(config.local_runtime.vllm)
            # Requests in flight keep using the old providers; closing stops only their background work.
            await old.aclose(keep=new_state.reused)
            self.metrics.config_reloads.labels("success").inc()
            log.info("config reloaded: %d models", len(new_state.models))
            return new_state
