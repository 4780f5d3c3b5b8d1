"""The configuration file's schema (pydantic). Cross-references are checked in `references.py`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gateway.config.routing import HedgingConfig, Metric, RoutingConfig, SpillThresholdsConfig, Strategy
from gateway.config.tenancy import Budgets, LedgerConfig, Prices, RateLimitConfig, TenantConfig
from gateway.provider_registry import ProviderConfig
from local_runtime.vllm_supervisor import LocalRuntimeConfig
from providers.base import Duration


def parse_size(value: Any) -> Any:
    """`10MB`, `512KiB`, or a plain number of bytes."""
    if isinstance(value, str):
        match = re.match(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", value.lower())
        if not match:
            raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 16MiB)")
        unit = match.group(2) or "b"
        factor = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}[unit]
        return int(match.group(1)) * factor
    return value


ByteSize = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: str = ".switchyard"
    max_body_bytes: ByteSize = 16 * 2**20
    drain_grace: Duration = 30.0
    request_log: bool = Field(default=True, description="One JSON line per request on stderr.")
    workers: int = Field(default=1, ge=1, le=64, description="Gateway processes sharing the port.")


class StoreConfig(_Strict):
    redis_url: str = Field(default="", description="Empty: start an embedded Redis under server.data_dir.")


class ApiKeyConfig(_Strict):
    key: str | None = Field(default=None, min_length=8, description="The secret; hashed at load, never kept.")
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    tenant: Name
    team: Name | None = None
    project: Name | None = None
    name: str | None = None
    budget: Budgets = ()
    rate_limit: RateLimitConfig | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeyConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of 'key' or 'key_sha256'")
        return self


class AuthConfig(_Strict):
    admin_key: str | None = Field(default=None, min_length=8)
    admin_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    keys: list[ApiKeyConfig] = Field(default_factory=list)


class CapabilitiesConfig(_Strict):
    """Overrides of the catalog's capabilities for one deployment (unset: the catalog's value)."""

    chat: bool | None = None
    embeddings: bool | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    streaming: bool | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)


class DeploymentConfig(_Strict):
    provider: Name
    model: str | None = Field(default=None, min_length=1, description="Upstream model name; default: the logical name.")
    name: Name | None = Field(default=None, description="Default: '<provider>/<model>'.")
    capabilities: CapabilitiesConfig | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0
    """weighted: share of traffic; 0 takes traffic only as a fallback."""
    local: bool | None = None
    """Own hardware; default: true for vllm, onnx, llamacpp and ollama providers."""
    region: str | None = None
    tags: tuple[str, ...] = ()
    price: Prices = Field(default=(), description="Overrides the catalog's list price (e.g. internal GPU prices).")


class TimeoutConfig(_Strict):
    connect: Duration = 5.0
    first_token: Duration = 30.0
    total: Duration = 300.0


class PolicyConfig(_Strict):
    strategy: Strategy = "priority"
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    deadline: Duration = Field(default=600.0, description="Overall limit for all attempts of one request.")
    spill_when: SpillThresholdsConfig | None = Field(default=None, description="spillover: when local is full.")
    resume_when: SpillThresholdsConfig | None = Field(default=None, description="spillover: when to come back.")
    metric: Metric = Field(default="auto", description="lowest_latency / slo_cost: ttft, total or auto.")
    explore_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    slo: Duration | None = Field(default=None, description="slo_cost: the p95 objective.")
    slo_min_samples: int = Field(default=5, ge=1)
    hedging: HedgingConfig = Field(default_factory=HedgingConfig)

    @model_validator(mode="after")
    def _strategy_needs(self) -> PolicyConfig:
        if self.strategy == "slo_cost" and self.slo is None:
            raise ValueError("strategy slo_cost needs 'slo' (e.g. slo: 2s)")
        return self


class ModelConfig(_Strict):
    description: str | None = None
    policy: Name = "default"
    deployments: list[DeploymentConfig] = Field(min_length=1)


class TracingConfig(_Strict):
    enabled: bool = False
    endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint.")
    service_name: str = "switchyard"
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0


class GatewayConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    providers: dict[Name, ProviderConfig] = Field(default_factory=dict)
    policies: dict[Name, PolicyConfig] = Field(default_factory=dict)
    models: dict[Name, ModelConfig] = Field(default_factory=dict)
    tenants: dict[Name, TenantConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    local_runtime: LocalRuntimeConfig = Field(default_factory=LocalRuntimeConfig)

    def all_providers(self) -> dict[str, Any]:
        """The configured providers plus a `kind: vllm` provider per supervised vLLM server."""
        supervised = {server.name: server.provider_config() for server in self.local_runtime.vllm}
        return {**self.providers, **supervised}

    ledger: LedgerConfig = Field(default_factory=LedgerConfig)

    def policy(self, name: str) -> PolicyConfig:
        return self.policies.get(name) or PolicyConfig()
