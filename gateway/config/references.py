"""Checks that need the whole file: names that refer to other sections."""

from __future__ import annotations

from gateway.config.schema import GatewayConfig
from policies.pricing import schedule_from_entries

Issue = tuple[tuple[str | int, ...], str]


def check_references(config: GatewayConfig) -> list[Issue]:
    # Here, not at the top: gateway.routing imports gateway.config, so `import gateway.routing` on its
    # own would find this module half-initialized.
    from gateway.routing import route_policy

    issues: list[Issue] = []
    providers = config.all_providers()
    for index, server in enumerate(config.local_runtime.vllm):
        if server.name in config.providers:
            issues.append((("local_runtime", "vllm", index, "name"), f"{server.name!r} is also a name in providers"))
    for model_name, model in config.models.items():
        if model.policy != "default" and model.policy not in config.policies:
            issues.append((("models", model_name, "policy"), f"unknown policy {model.policy!r}"))
        seen: dict[str, int] = {}
        for index, deployment in enumerate(model.deployments):
            path: tuple[str | int, ...] = ("models", model_name, "deployments", index)
            if deployment.provider not in providers:
                known = ", ".join(sorted(providers)) or "none defined"
                issues.append(((*path, "provider"), f"unknown provider {deployment.provider!r} (known: {known})"))
                continue
            name = deployment_name(deployment.provider, deployment.model, model_name, deployment.name)
            if deployment.price:
                try:
                    schedule_from_entries([p.entry() for p in deployment.price], source="deployment", model=name)
                except ValueError as exc:
                    issues.append(((*path, "price"), str(exc)))
            if name in seen:
                issues.append(((*path, "name"), f"duplicate deployment name {name!r} (also at index {seen[name]})"))
            seen[name] = index
    for policy_name, policy in config.policies.items():
        try:
            route_policy(policy_name, policy)
        except ValueError as exc:
            issues.append((("policies", policy_name), str(exc)))
    names = {"default", *config.policies}
    routable = {*providers, *(p.kind for p in providers.values())}
    for model_name, model in config.models.items():
        for deployment in model.deployments:
            routable.add(deployment_name(deployment.provider, deployment.model, model_name, deployment.name))
    for tenant, tenant_config in config.tenants.items():
        routing = tenant_config.routing
        if routing.policy is not None and routing.policy not in names:
            issues.append((("tenants", tenant, "routing", "policy"), f"unknown policy {routing.policy!r}"))
        for field in ("allow", "deny"):
            for index, name in enumerate(getattr(routing, field) or ()):
                if name not in routable:
                    issues.append(
                        (
                            ("tenants", tenant, "routing", field, index),
                            f"unknown deployment, provider or provider kind {name!r}",
                        )
                    )
        for limited in tenant_config.model_limits:
            if limited not in config.models:
                issues.append((("tenants", tenant, "model_limits", limited), f"unknown model {limited!r}"))
    tenants_by_hash: dict[str, int] = {}
    for index, key in enumerate(config.auth.keys):
        secret = key.key_sha256 or key.key or ""
        if secret in tenants_by_hash:
            issues.append((("auth", "keys", index), f"same key as auth.keys[{tenants_by_hash[secret]}]"))
        tenants_by_hash[secret] = index
    if config.auth.admin_key is not None and config.auth.admin_key in {k.key for k in config.auth.keys}:
        issues.append((("auth", "admin_key"), "the admin key must differ from every tenant key"))
    return issues


def deployment_name(provider: str, model: str | None, logical: str, explicit: str | None) -> str:
    return explicit or f"{provider}/{model or logical}"
