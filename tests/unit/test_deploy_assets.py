"""Static checks of deploy/: the Grafana dashboard queries only what the gateway exports, and the compose,
Prometheus, Grafana, Docker and Helm files agree with each other and with the gateway config.

No Docker daemon or Kubernetes here: nothing is started. Where `promtool` is installed, it parses every
dashboard expression too (Prometheus's own parser); without it that one test is skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import load_config, parse_config
from gateway.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "switchyard.json"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "switchyard.yaml"
GATEWAY_CONFIG = DEPLOY / "config.compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
CHART = DEPLOY / "helm" / "switchyard"

# Labels Prometheus attaches to every scraped series (job, instance) and the one prometheus.yml adds.
TARGET_LABELS = {"job", "instance", "service"}
# Grafana's built-in interval variables, replaced by a duration before checking.
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range")

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "count_over_time", "day_of_month", "day_of_week", "delta", "deriv", "exp", "floor", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln",
    "log2", "log10", "max_over_time", "min_over_time", "predict_linear", "quantile_over_time", "rate", "resets",
    "round", "scalar", "sort", "sort_desc", "sqrt", "stddev_over_time", "sum_over_time", "time", "timestamp",
    "vector",
}  # fmt: skip
PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
}  # fmt: skip
GROUPING_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OTHER_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")

TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<range>\[[0-9]+(?:ms|[smhdwy])(?::(?:[0-9]+(?:ms|[smhdwy]))?)?\])
    | (?P<number>[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<matchop>=~|!~|!=|==|>=|<=|=)
    | (?P<op>[-+*/%^<>])
    | (?P<punct>[(){},])
    )""",
    re.VERBOSE,
)


# ----------------------------------------------------------------------------------------------- helpers


def exported_metrics() -> dict[str, set[str]]:
    """Every sample name the gateway's /metrics can show, with its label names.

    One child of every metric on a fresh `Metrics()` registry gets one observation, so each family shows all
    its samples (`_total`, `_bucket`/`_sum`/`_count`, ...); families that could not be observed count by the
    exposition's suffix rules.
    """
    metrics = Metrics()
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram | Summary):
            continue
        names = getattr(value, "_labelnames", ())
        child = value.labels(*(f"x{i}" for i in range(len(names)))) if names else value
        if isinstance(child, Counter):
            child.inc()
        elif isinstance(child, Gauge):
            child.set(1)
        else:
            child.observe(1)
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
    for family in metrics.registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            exported.setdefault(family.name + suffix, set())
    return exported


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return out


def variable_names(board: dict[str, Any]) -> set[str]:
    return {v["name"] for v in board["templating"]["list"]}


def dashboard_exprs() -> list[tuple[str, str]]:
    board = dashboard()
    return [(p["title"], t["expr"]) for p in panels(board) for t in p.get("targets", [])]


def substitute(expr: str, variables: set[str]) -> str:
    """Grafana variables out: intervals become durations, `$var` / `${var}` (inside strings) a regex."""
    for interval in GRAFANA_INTERVALS:
        expr = expr.replace(interval, "5m")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"unknown dashboard variable ${name}"
        return ".*"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        match = TOKEN.match(expr, pos)
        assert match and match.lastgroup, f"cannot parse at {expr[pos : pos + 30]!r}"
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return tokens


def check_promql(expr: str, exported: dict[str, set[str]]) -> set[str]:
    """A PromQL-ish check of one expression; returns the gateway metric names it uses.

    Brackets balance; a name before `(` is a PromQL function or aggregation; label matchers are
    `label op "string"`; every selected metric is exported (by the gateway, or Prometheus's own `up`), with
    the labels matched on; grouping labels belong to a metric of the expression; rate/increase ranges apply
    to counter samples; histogram_quantile groups by `le` over `_bucket` samples.
    """
    tokens = tokenize(expr)
    known = {**exported, "up": set()}
    used: set[str] = set()
    grouping: set[str] = set()
    labels_of_expr: set[str] = set(TARGET_LABELS)
    stack: list[str] = []
    functions: list[str | None] = []  # what each open "(" belongs to
    pending: str | None = None  # an aggregation waiting for its "(" after `by (...)`
    previous_metric: str | None = None
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in GROUPING_KEYWORDS:
            if following[1] == "(":  # group_left / group_right may stand without a label list
                close = next(j for j in range(i + 2, len(tokens)) if tokens[j][1] == ")")
                assert all(k in ("ident", "punct") for k, _ in tokens[i + 2 : close]), f"bad label list in {expr}"
                grouping.update(t for k, t in tokens[i + 2 : close] if k == "ident")
                i = close + 1
                continue
        elif kind == "ident" and text in PROMQL_AGGREGATIONS and following[1] in ("by", "without"):
            pending = text
        elif kind == "ident" and following[1] == "(":
            assert text in PROMQL_FUNCTIONS | PROMQL_AGGREGATIONS, f"unknown function {text!r} in {expr}"
            pending = text
        elif kind == "ident" and text.lower() not in OTHER_KEYWORDS:
            assert text in known, f"{text} is not exported by the gateway (gateway/metrics.py); in {expr}"
            if text != "up":
                used.add(text)
            labels_of_expr.update(known[text])
            if text.endswith("_bucket"):
                labels_of_expr.add("le")
            previous_metric = text
            if following[1] == "{":
                close = next(j for j in range(i + 2, len(tokens)) if tokens[j][1] == "}")
                matchers = tokens[i + 2 : close]
                for start in range(0, len(matchers), 4):
                    label, op, value = matchers[start : start + 3]
                    assert label[0] == "ident" and op[0] == "matchop" and value[0] == "string", (
                        f"bad label matcher {matchers[start : start + 3]} in {expr}"
                    )
                    assert op[1] != "==", f"label matchers use =, not ==: {expr}"
                    allowed = known[text] | TARGET_LABELS | ({"le"} if text.endswith("_bucket") else set())
                    assert not known[text] or label[1] in allowed, f"{text} has no label {label[1]!r}: {expr}"
                    if start + 3 < len(matchers):
                        assert matchers[start + 3][1] == ",", f"matchers must be comma-separated: {expr}"
                i = close + 1
                continue
        elif kind == "range":
            assert previous_metric is not None and tokens[i - 1][1] in ("}", previous_metric), (
                f"range selector not after a metric selector: {expr}"
            )
            enclosing = functions[-1] if functions else None
            if enclosing in ("rate", "increase", "irate"):
                assert previous_metric.endswith(COUNTER_SUFFIXES), f"{enclosing} of a gauge {previous_metric}: {expr}"
        elif text in ("(", "{"):
            stack.append(text)
            functions.append(pending if text == "(" else None)
            pending = None
        elif text in (")", "}"):
            assert stack and stack.pop() == {")": "(", "}": "{"}[text], f"unbalanced brackets in {expr}"
            functions.pop()
        i += 1
    assert not stack, f"unbalanced brackets in {expr}"
    assert grouping <= labels_of_expr, f"grouping by {grouping - labels_of_expr} that no metric has: {expr}"
    if "histogram_quantile" in expr:
        assert any(m.endswith("_bucket") for m in used) and "le" in grouping, f"histogram_quantile needs le: {expr}"
    return used


def host_port(address: str) -> tuple[str, int]:
    if "://" in address:
        parts = urlsplit(address)
        assert parts.hostname and parts.port, address
        return parts.hostname, parts.port
    host, _, port = address.rpartition(":")
    return host, int(port)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a path relative to deploy/, or a named volume) of a compose service."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[target] = source
    return out


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def container_port(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# ----------------------------------------------------------------------------------------------- dashboard


def test_exported_set_is_derived_from_the_registry() -> None:
    exported = exported_metrics()
    assert {"switchyard_requests_total", "switchyard_request_duration_seconds_bucket"} <= set(exported)
    assert "switchyard_requests" not in exported  # a counter is only seen with its _total suffix
    assert exported["switchyard_upstream_errors_total"] == {"model", "deployment", "error"}
    assert "le" in exported["switchyard_time_to_first_token_seconds_bucket"]


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "switchyard-gateway" and board["title"] == "Switchyard"
    assert isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        own = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not own & cells, f"panel {panel['title']!r} overlaps another"
        cells |= own
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_dashboard_has_the_expected_panels() -> None:
    titles = {p["title"] for p in panels(dashboard()) if p["type"] != "row"}
    expected = {
        "Requests/s by model",
        "Requests/s by status class",
        "Tokens/s by type",
        "Request duration percentiles",
        "Time to first token percentiles",
        "p95 request duration by deployment",
        "p95 time to first token by deployment",
        "Upstream error ratio by deployment",
        "Failover ratio by model",
        "Circuit breaker state by deployment",
        "Requests waiting (queue) by server",
        "KV-cache usage by server",
        "Spend rate by tenant (USD/hour)",
        "Spend rate by model (USD/hour)",
        "Spend by tenant and model (time range)",
        "Budget utilisation now",
        "Budget burn: utilisation over time",
        "Budget burn: projected daily spend by tenant",
        "Admission rejections/s by reason",
    }
    assert expected <= titles, f"missing panels: {sorted(expected - titles)}"
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows[:2] == ["Overview", "Traffic"] and "Cost and budgets" in rows


def test_every_query_uses_only_exported_metrics() -> None:
    exported = exported_metrics()
    board = dashboard()
    names = variable_names(board)
    used: set[str] = set()
    for title, expr in dashboard_exprs():
        try:
            used |= check_promql(substitute(expr, names), exported)
        except AssertionError as exc:
            raise AssertionError(f"panel {title!r}: {exc}") from None
        # Besides the parse: every identifier named like a gateway metric (not a label) is exported.
        prefixed = set(re.findall(r"\b(?:switchyard|gen_ai)_\w*", expr))
        unknown = prefixed - set(exported) - set().union(*exported.values())
        assert not unknown, f"panel {title!r}: {unknown} not exported by gateway/metrics.py"
    # The dashboard covers what matters most; gauges set only at scrape time are in too.
    for name in (
        "switchyard_requests_total",
        "switchyard_request_duration_seconds_bucket",
        "switchyard_time_to_first_token_seconds_bucket",
        "switchyard_upstream_errors_total",
        "switchyard_failovers_total",
        "switchyard_circuit_state",
        "switchyard_backend_requests_waiting",
        "switchyard_cost_usd_total",
        "switchyard_budget_alerts_total",
    ):
        assert name in used, f"no panel shows {name}"


def test_template_variables_query_exported_labels() -> None:
    exported = exported_metrics()
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("model", "deployment", "tenant"):
        query = variables[name]["definition"]
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, query
        metric, label = match.groups()
        assert metric in exported and label in exported[metric], query
        assert variables[name]["query"] == query


def test_promql_checker_rejects_what_it_should() -> None:
    exported = exported_metrics()
    bad = [
        "sum(rate(switchyard_requests[5m]))",  # counter without _total
        'sum(rate(switchyard_requests_total{tenant="a"}[5m]))',  # no such label
        "rate(switchyard_requests_in_flight[5m])",  # rate of a gauge
        "sum by (tenant) (rate(switchyard_requests_total[5m]))",  # grouping label nobody has
        "sum(rate(switchyard_requests_total[5m])",  # unbalanced
        "histogram_quantile(0.9, sum by (model) (rate(switchyard_request_duration_seconds_bucket[5m])))",  # no le
        "frobnicate(switchyard_requests_total)",  # unknown function
        "gen_ai_client_operation_duration",  # not exported under this name
    ]
    for expr in bad:
        with pytest.raises(AssertionError):
            check_promql(expr, exported)
    ok = 'sum by (le) (rate(switchyard_request_duration_seconds_bucket{model=~".*", deployment!="x"}[5m]))'
    assert check_promql(ok, exported) == {"switchyard_request_duration_seconds_bucket"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (the prometheus package) not installed")
def test_promtool_parses_every_query(tmp_path: Path) -> None:
    names = variable_names(dashboard())
    rules = [{"record": f"dashboard:q{i}", "expr": substitute(e, names)} for i, (_, e) in enumerate(dashboard_exprs())]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------------------------- compose & co


def test_compose_services_and_mounts() -> None:
    spec = compose()
    services = spec["services"]
    assert {"gateway", "redis", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: mount source {source} missing"
            else:
                assert source in spec["volumes"], f"{name}: volume {source} not declared"
            assert target.startswith("/"), target
    gateway = services["gateway"]
    assert (ROOT / "deploy" / gateway["build"]["context"] / gateway["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert mounts(gateway)["/etc/switchyard/config.yaml"] == "./config.compose.yaml"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    loadgen = services["loadgen"]
    assert loadgen["profiles"] == ["loadgen"] and loadgen["image"] == gateway["image"]


def test_prometheus_scrapes_the_gateway_service() -> None:
    prom = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert prom["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    job = jobs["switchyard"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "authorization" not in job and "basic_auth" not in job  # /metrics needs no key
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    services = compose()["services"]
    config = load_config(GATEWAY_CONFIG, {})
    for target in targets:
        host, port = host_port(target)
        assert host == "gateway" and host in services
        assert port == config.server.port
        assert port in container_port(services["gateway"])
    extra = {label for group in job["static_configs"] for label in group.get("labels", {})}
    assert extra <= TARGET_LABELS
    # The dashboard's `up{job=...}` names this job.
    for _, expr in dashboard_exprs():
        for name in re.findall(r'job="([^"]+)"', expr):
            assert name in jobs
    # The prometheus service reads this file.
    prometheus = services["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mounts(prometheus)[config_flag.split("=", 1)[1]] == "./prometheus/prometheus.yml"


def test_grafana_provisioning_matches_compose() -> None:
    grafana = compose()["services"]["grafana"]
    grafana_mounts = mounts(grafana)
    assert grafana_mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text(encoding="utf-8"))
    assert providers["apiVersion"] == 1
    for provider in providers["providers"]:
        assert provider["type"] == "file"
        path = provider["options"]["path"]
        assert path in grafana_mounts, f"dashboards path {path} is not mounted into grafana"
        assert (DEPLOY / grafana_mounts[path] / DASHBOARD.name).is_file()
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        folder, _, file = home.rpartition("/")
        assert (DEPLOY / grafana_mounts[folder] / file).is_file()
    sources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert sources["apiVersion"] == 1
    (source,) = [s for s in sources["datasources"] if s["type"] == "prometheus"]
    assert source["isDefault"] is True
    host, port = host_port(source["url"])
    services = compose()["services"]
    assert host == "prometheus" and host in services
    assert port in container_port(services["prometheus"])
    listen = [a for a in services["prometheus"]["command"] if a.startswith("--web.listen-address=")]
    assert not listen or listen[0].endswith(f":{port}")
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["uid"]


def test_compose_gateway_config_passes_config_check() -> None:
    from typer.testing import CliRunner

    from gateway.cli import app

    config = load_config(GATEWAY_CONFIG, {})  # every ${VAR} has a default
    assert urlsplit(config.store.redis_url).hostname == "redis" and "redis" in compose()["services"]
    env = compose()["services"]["gateway"]["environment"]
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    overridden = load_config(GATEWAY_CONFIG, {"REDIS_URL": env["REDIS_URL"], "SWITCHYARD_ADMIN_KEY": "sk-admin-x1234"})
    assert overridden.store.redis_url == env["REDIS_URL"]
    assert config.server.host == "0.0.0.0"
    assert {p.kind for p in config.providers.values() if p.enabled} >= {"mock"}
    assert not [p for p in config.providers.values() if getattr(p, "api_key", None)], "runs with no API key"
    priced = [d for m in config.models.values() for d in m.deployments if d.provider == "mock" and d.price]
    assert priced, "cost panels need a priced deployment"
    assert any(t.budget for t in config.tenants.values()), "budget panels need a tenant budget"
    result = CliRunner().invoke(app, ["config", "check", str(GATEWAY_CONFIG)], env={"REDIS_URL": env["REDIS_URL"]})
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_loadgen_keys_are_the_compose_configs() -> None:
    config_keys = re.findall(r"\$\{SWITCHYARD_(?:DEMO|ACME)_KEY:-([^}]+)\}", GATEWAY_CONFIG.read_text())
    loadgen_default = re.search(r'"LOADGEN_KEYS", "([^"]+)"', (DEPLOY / "loadgen.py").read_text()).group(1)
    assert sorted(loadgen_default.split(",")) == sorted(config_keys)
    models = re.findall(r'"model": "([\w-]+)"', (DEPLOY / "loadgen.py").read_text())
    assert set(models) <= set(load_config(GATEWAY_CONFIG, {}).models)


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    words = [w for w, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for w, arg in instructions if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must run as a non-root user"
    (healthcheck,) = [arg for w, arg in instructions if w == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "8080" in healthcheck
    assert ("EXPOSE", "8080") in instructions
    assert any(w == "RUN" and "pip install" in arg for w, arg in instructions)
    command = json.loads(next(arg for w, arg in instructions if w == "ENTRYPOINT")) + json.loads(
        next(arg for w, arg in instructions if w == "CMD")
    )
    assert " ".join(command).startswith("switchyard serve --config /etc/switchyard/config.yaml")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), "USER after the last RUN"
    assert not [arg for _, arg in instructions if re.search(r"cuda|nvidia", arg, re.IGNORECASE)], "CPU-only image"
    # Everything COPY takes from the context exists and gets past Dockerfile.dockerignore.
    allowed = [
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for word, arg in instructions:
        if word == "COPY":
            *sources, _ = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is excluded by Dockerfile.dockerignore"


# ----------------------------------------------------------------------------------------------- helm


def test_helm_chart_is_consistent() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "switchyard" and chart["version"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    env = {"REDIS_URL": "redis://redis:6379/0", "SWITCHYARD_ADMIN_KEY": "sk-admin-12345678", "ACME_KEY": "sk-acme-1234"}
    config = parse_config(yaml.safe_dump(values["config"]), env, "values.yaml:config")
    assert config.server.port == values["containerPort"] and config.server.host == "0.0.0.0"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    defined = set(re.findall(r'define "([^"]+)"', helpers))
    templates = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    assert {"deployment.yaml", "service.yaml", "configmap.yaml"} <= set(templates)
    for name, text in templates.items():
        actions = re.findall(r"\{\{-?(.*?)-?\}\}", text, re.DOTALL)
        assert text.count("{{") == text.count("}}") == len(actions), f"{name}: unbalanced {{{{ }}}}"
        depth = 0
        for action in actions:
            word = action.strip().split(" ")[0].strip("(")
            if word in ("if", "with", "range", "define", "block"):
                depth += 1
            elif word == "end":
                depth -= 1
            assert depth >= 0, f"{name}: end without a block"
        assert depth == 0, f"{name}: a block is not closed"
        for used in re.findall(r'include "([^"]+)"', text):
            assert used in defined, f"{name}: include of undefined {used}"
        for path in re.findall(r"\.Values((?:\.\w+)+)", text):
            node: Any = values
            for part in path.strip(".").split("."):
                assert isinstance(node, dict) and part in node, f"{name}: .Values{path} is not in values.yaml"
                node = node[part]
        if name.endswith(".yaml"):
            # With the actions blanked out, each manifest is still YAML of the right kind.
            blanked = re.sub(r"^\s*\{\{-.*?\}\}\s*$\n?", "", text, flags=re.MULTILINE)
            blanked = re.sub(r"\{\{.*?\}\}", "x", blanked)
            manifest = yaml.safe_load(blanked)
            assert manifest["apiVersion"] and manifest["kind"] and manifest["metadata"]["name"]
    deployment = templates["deployment.yaml"]
    assert "secretRef" in deployment and ".Values.existingSecret" in deployment
    assert "/healthz" in deployment and "/readyz" in deployment
    assert values["podSecurityContext"]["runAsNonRoot"] is True


def test_readme_says_how_to_run_and_that_nothing_ran_here() -> None:
    text = (DEPLOY / "README.md").read_text()
    assert "docker compose -f deploy/compose.yaml up" in text
    assert "not run" in text.lower()
    for path in ("compose.yaml", "Dockerfile", "config.compose.yaml", "prometheus/prometheus.yml", "helm/switchyard"):
        assert path in text, path
