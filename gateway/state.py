"""One immutable snapshot of everything a config describes, built once per load and swapped atomically.

Requests keep the snapshot they started with, so a reload never changes a request in flight.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from gateway.auth import KeyRing
from gateway.config.references import deployment_name
from gateway.config.schema import CapabilitiesConfig, GatewayConfig, PolicyConfig
from gateway.pricing import Pricing, deployment_pricing
from gateway.provider_registry import build_provider
from gateway.routing import LOCAL_KINDS, NO_RULES, RoutePolicy, TenantRules, route_policy, tenant_rules
from local_runtime.onnx_provider import OnnxProvider
from policies.capabilities import UNKNOWN, Capabilities
from policies.observations import DeploymentView
from policies.router import RouterState
from providers.base import Provider, ReportsLoad
from providers.catalog import lookup


@dataclass(frozen=True, slots=True)
class DeploymentTarget:
    name: str
    provider_name: str
    provider: Provider
    upstream_model: str
    capabilities: Capabilities
    pricing: Pricing


@dataclass(frozen=True, slots=True)
class ModelRoute:
    name: str
    description: str | None
    owned_by: str
    deployments: tuple[DeploymentTarget, ...]
    by_name: dict[str, DeploymentTarget]
    watched: tuple[tuple[str, ReportsLoad], ...]
    """Deployments whose server reports health (vLLM), by deployment name."""
    views: tuple[DeploymentView, ...]
    """The deployments as the router sees them (built once per config load)."""
    policy: RoutePolicy
    router_state: RouterState
    """The model's weighted rotation and spillover modes (this config's life)."""
    tenant_states: dict[str, RouterState]
    """Router state per tenant policy override of this model, made on first use."""

    def state_for(self, policy: RoutePolicy) -> RouterState:
        if policy is self.policy:
            return self.router_state
        state = self.tenant_states.get(policy.name)
        if state is None:
            state = self.tenant_states[policy.name] = RouterState()
        return state

    def unhealthy(self) -> list[str]:
        return [name for name, provider in self.watched if not provider.load().healthy]


@dataclass(frozen=True, slots=True)
class GatewayState:
    config: GatewayConfig
    keys: KeyRing
    models: dict[str, ModelRoute]
    providers: dict[str, Provider]
    secrets: tuple[str, ...]
    loaded_at: int
    policies: dict[str, RoutePolicy]
    tenant_rules: dict[str, TenantRules]
    reused: frozenset[str] = frozenset()
    """Providers taken over from the previous state (already started)."""

    def routing_for(self, tenant: str, route: ModelRoute) -> tuple[RoutePolicy, TenantRules]:
        """The policy a tenant's request uses for `route`, and the tenant's routing restrictions."""
        rules = self.tenant_rules.get(tenant, NO_RULES)
        if rules.policy is not None:
            return self.policies[rules.policy], rules
        return route.policy, rules

    async def start(self) -> None:
        for name, provider in self.providers.items():
            if isinstance(provider, ReportsLoad) and name not in self.reused:
                await provider.start()

    async def aclose(self, keep: frozenset[str] = frozenset()) -> None:
        """Close the providers, except those `keep` names (taken over by the next state)."""
        for name, provider in self.providers.items():
            if name not in keep:
                await provider.aclose()


_REUSABLE = (OnnxProvider,)
"""Providers that hold loaded models: a reload keeps them while their config is unchanged."""


def build_state(
    config: GatewayConfig, session: aiohttp.ClientSession, previous: Mapping[str, Provider] | None = None
) -> GatewayState:
    providers: dict[str, Provider] = {}
    reused: set[str] = set()
    for name, provider_config in config.all_providers().items():
        if not provider_config.enabled:
            continue
        old = (previous or {}).get(name)
        if isinstance(old, _REUSABLE) and old.config == provider_config:
            providers[name] = old
            reused.add(name)
            continue
        providers[name] = build_provider(name, provider_config, session)
    policies = {name: route_policy(name, p) for name, p in config.policies.items()}
    policies.setdefault("default", route_policy("default", PolicyConfig()))
    models: dict[str, ModelRoute] = {}
    for model_name, model in config.models.items():
        policy = policies[model.policy]
        targets = []
        views = []
        for position, deployment in enumerate(model.deployments):
            provider = providers.get(deployment.provider)
            if provider is None:
                continue  # provider disabled (e.g. its API key is not set)
            name = deployment_name(deployment.provider, deployment.model, model_name, deployment.name)
            targets.append(
                DeploymentTarget(
                    name=name,
                    provider_name=deployment.provider,
                    provider=provider,
                    upstream_model=deployment.model or model_name,
                    capabilities=_capabilities(deployment.model or model_name, deployment.capabilities),
                    pricing=deployment_pricing(name, deployment.model or model_name, deployment.price),
                )
            )
            target = targets[-1]
            views.append(
                DeploymentView(
                    name=name,
                    position=position,
                    provider=deployment.provider,
                    provider_kind=provider.kind,
                    local=deployment.local if deployment.local is not None else provider.kind in LOCAL_KINDS,
                    weight=deployment.weight,
                    tags=frozenset(deployment.tags),
                    region=deployment.region,
                    capabilities=target.capabilities,
                    prices=target.pricing.own or target.pricing.listed,
                )
            )
        if not targets:
            continue  # every deployment is on a disabled provider: the model is not offered
        kinds = {t.provider.kind for t in targets}
        models[model_name] = ModelRoute(
            name=model_name,
            description=model.description,
            owned_by="switchyard-mock" if kinds == {"mock"} else "switchyard",
            deployments=tuple(targets),
            by_name={t.name: t for t in targets},
            watched=tuple((t.name, t.provider) for t in targets if isinstance(t.provider, ReportsLoad)),
            views=tuple(views),
            policy=policy,
            router_state=RouterState(),
            tenant_states={},
        )
    return GatewayState(
        config=config,
        keys=KeyRing(config.auth),
        models=models,
        providers=providers,
        secrets=_secrets(config),
        loaded_at=int(time.time()),
        policies=policies,
        tenant_rules={name: tenant_rules(t.routing) for name, t in config.tenants.items()},
        reused=frozenset(reused),
    )


def _capabilities(upstream_model: str, override: CapabilitiesConfig | None) -> Capabilities:
    entry = lookup(upstream_model)
    # A catalog entry that does not say otherwise is a chat model, not an embedding model.
    caps = Capabilities(chat=True, embeddings=False).merged(entry) if entry else UNKNOWN
    return caps.merged(override.model_dump()) if override is not None else caps


_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})


def _secrets(config: GatewayConfig) -> tuple[str, ...]:
    found = [k.key for k in config.auth.keys if k.key] + ([config.auth.admin_key] if config.auth.admin_key else [])
    for provider in config.providers.values():
        api_key = getattr(provider, "api_key", None)
        if api_key:
            found.append(api_key)
        headers = getattr(provider, "headers", None) or {}
        found.extend(
            v for k, v in headers.items() if k.lower() in {"authorization", "api-key", "x-api-key", "x-goog-api-key"}
        )
    if config.store.redis_url and "@" in config.store.redis_url:
        found.append(config.store.redis_url)
    return tuple(s for s in found if len(s) >= 8)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text
