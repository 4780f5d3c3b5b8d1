from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_config, parse_config
from gateway.config.interpolate import interpolate
from gateway.config.tenancy import LedgerConfig
from providers.base import parse_duration

VALID = """
providers:
  openai: {kind: openai, api_key: "${OPENAI_API_KEY}"}
  local: {kind: vllm, base_url: "http://127.0.0.1:8000/v1"}
models:
  chat-default:
    policy: fast
    deployments:
      - {provider: local, model: meta-llama/Llama-3.1-8B-Instruct}
      - {provider: openai, model: gpt-4o-mini}
policies:
  fast: {max_attempts: 2, timeout: {connect: 500ms, first_token: 2s, total: 1m}, deadline: 90s}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env or {})
    return info.value.problems


def test_valid_config_parses_durations_and_defaults() -> None:
    config = parse_config(VALID, {"OPENAI_API_KEY": "sk-abc12345"})
    policy = config.policy("fast")
    assert (policy.timeout.connect, policy.timeout.first_token, policy.timeout.total) == (0.5, 2.0, 60.0)
    assert policy.deadline == 90.0
    assert config.policy("default").max_attempts == 3
    assert config.server.port == 8080


def test_unknown_provider_reported_with_yaml_path() -> None:
    text = VALID.replace("{provider: openai, model: gpt-4o-mini}", "{provider: opnai, model: gpt-4o-mini}")
    found = problems(text, {"OPENAI_API_KEY": "x"})
    assert found == ["models.chat-default.deployments[1].provider: unknown provider 'opnai' (known: local, openai)"]


def test_schema_errors_each_with_path() -> None:
    text = """
server: {port: abc, bogus: 1}
providers:
  x: {kind: opnai}
  y: {kind: openai, base_url: "http://h/v1", timeout: 3}
policies:
  p: {max_attempts: 0, timeout: {connect: 2x}}
models:
  m: {deployments: []}
"""
    found = problems(text)
    assert "server.port: Input should be a valid integer, unable to parse string as an integer" in found
    assert "server.bogus: unknown field" in found
    assert any(p.startswith("providers.x.kind: unknown provider kind 'opnai'") for p in found)
    assert "providers.y.timeout: unknown field" in found
    assert "policies.p.max_attempts: Input should be greater than or equal to 1" in found
    assert "policies.p.timeout.connect: not a duration: '2x' (use e.g. 500ms, 2s, 1m, 14d)" in found
    assert any(p.startswith("models.m.deployments:") for p in found)


def test_missing_env_variable_named_without_values() -> None:
    found = problems(VALID)
    assert len(found) == 1
    assert found[0].startswith("providers.openai.api_key: environment variable OPENAI_API_KEY is not set")


def test_unknown_policy_and_duplicate_keys() -> None:
    text = """
auth: {keys: [{key: sk-same-key-1, tenant: a}, {key: sk-same-key-1, tenant: b}]}
providers: {m: {kind: mock}}
models: {x: {policy: nope, deployments: [{provider: m}]}}
"""
    found = problems(text)
    assert "models.x.policy: unknown policy 'nope'" in found
    assert "auth.keys[1]: same key as auth.keys[0]" in found


def test_secret_values_never_appear_in_problems() -> None:
    secret = "sk-very-secret-value-123"
    text = f"""
auth: {{admin_key: "{secret}", keys: [{{key: "{secret}", tenant: a, bogus: 1}}]}}
providers: {{o: {{kind: openai, api_key: "{secret}", base_url: 5}}}}
"""
    found = problems(text)
    assert found and all(secret not in p for p in found)


def test_yaml_syntax_error_has_line() -> None:
    found = problems("models: {a: [}\n")
    assert found[0].startswith("line 1, column")


def test_interpolation_forms() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("${A}-${B:-two}-${A:+yes}-${B:+no}-$$x", env) == "1-two-yes--$x"
    assert interpolate({"k": ["${EMPTY:-d}"]}, env) == {"k": ["d"]}


def test_enabled_flag_from_env_disables_provider_and_hides_model() -> None:
    text = """
providers:
  openai: {kind: openai, api_key: "${OPENAI_API_KEY:-}", enabled: "${OPENAI_API_KEY:+true}"}
  mock: {kind: mock}
models:
  gpt: {deployments: [{provider: openai, model: gpt-4o-mini}, {provider: mock}]}
"""
    assert parse_config(text, {}).providers["openai"].enabled is False
    assert parse_config(text, {"OPENAI_API_KEY": "sk-x"}).providers["openai"].enabled is True


def test_quickstart_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "examples" / "quickstart.yaml", {})
    assert "mock" in config.models
    assert config.auth.admin_key == "sk-switchyard-admin-demo"


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/switchyard.yaml", {})
    assert "cannot read file" in info.value.problems[0]


def test_quickstart_adds_hosted_providers_only_with_their_keys() -> None:
    root = Path(__file__).resolve().parents[2]
    path = root / "examples" / "quickstart.yaml"
    none = load_config(path, {})
    assert not none.providers["openai"].enabled and not none.providers["anthropic"].enabled
    both = load_config(path, {"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-ant"})
    assert both.providers["openai"].enabled and both.providers["anthropic"].enabled
    assert [d.provider for d in both.models["chat-default"].deployments] == ["openai", "anthropic", "mock"]


def test_the_readme_ledger_example_parses_with_day_durations() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    line = next(row for row in readme.read_text().splitlines() if row.startswith("ledger: {archive: true, retention"))
    ledger = LedgerConfig.model_validate(yaml.safe_load(line)["ledger"])
    assert (ledger.retention.hourly, ledger.retention.daily, ledger.retention.stream) == (
        14 * 86400.0,
        400 * 86400.0,
        30 * 86400.0,
    )
    assert parse_duration("1.5d") == 1.5 * 86400 and parse_duration("2h") == 7200
