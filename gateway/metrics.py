"""Prometheus metrics, on a registry owned by the app (no globals).

Label values are bounded: logical models and deployments come from the config; a model the config
does not know is counted as `unknown`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from gateway.loop_metrics import LoopCounter, LoopHistogram
from providers.base import ServerLoad

# LLM latencies span milliseconds (embeddings, cached answers) to minutes (long generations).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 6, 12, 30)
# The OpenTelemetry GenAI conventions' advised boundaries for token usage.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TPOT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
_OPERATIONS = {"chat/completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        """`multiprocess_dir`: several workers share the figures through prometheus-client's multiprocess
        mode (each worker writes its own files there; /metrics sums them)."""
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        # Lock-free children for one process; the stock ones write the multiprocess files.
        counter, histogram = (LoopCounter, LoopHistogram) if multiprocess_dir is None else (Counter, Histogram)
        self.requests = counter(
            "switchyard_requests",
            "Requests answered, by logical model, serving deployment, its provider kind, endpoint, HTTP status"
            " class and error type (the status of an error; empty for a success).",
            ["model", "deployment", "provider", "endpoint", "status_class", "error_type"],
            registry=r,
        )
        self.duration = histogram(
            "switchyard_request_duration_seconds",
            "Time from request received to last byte sent.",
            ["model", "deployment", "endpoint"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = histogram(
            "switchyard_time_to_first_token_seconds",
            "Streaming requests: time from request received to the first event sent to the client.",
            ["model", "deployment"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = counter(
            "switchyard_tokens",
            "Tokens reported by upstreams (type: prompt, completion, cached, reasoning).",
            ["model", "deployment", "type"],
            registry=r,
        )
        self.attempts = counter(
            "switchyard_upstream_attempts",
            "Attempts against deployments, by outcome (success or the error code).",
            ["model", "deployment", "outcome"],
            registry=r,
        )
        self.upstream_errors = counter(
            "switchyard_upstream_errors",
            "Failed attempts against deployments, by error code.",
            ["model", "deployment", "error"],
            registry=r,
        )
        self.failovers = counter(
            "switchyard_failovers",
            "Requests served by a deployment other than the first one tried.",
            ["model"],
            registry=r,
        )
        self.in_flight = Gauge(
            "switchyard_requests_in_flight", "Requests being served.", registry=r, multiprocess_mode="livesum"
        )
        self.hedges = counter(
            "switchyard_hedges", "Hedged attempts sent after a slow first byte, by model.", ["model"], registry=r
        )
        self.circuit_state = Gauge(
            "switchyard_circuit_state",
            "Circuit breaker per deployment: 1 for its current state (closed, open, half_open, cooling).",
            ["deployment", "state"],
            registry=r,
            multiprocess_mode="max",
        )
        self.admission_rejections = counter(
            "switchyard_admission_rejections",
            "Requests refused before any upstream call, by reason (rate, too_large, budget).",
            ["reason"],
            registry=r,
        )
        self.admission_duration = histogram(
            "switchyard_admission_duration_seconds",
            "Time to check a request's rate limits and reserve its budgets (one Redis script call).",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
            registry=r,
        )
        self.admission_leases = counter(
            "switchyard_admission_leases",
            "Admission leases granted: room for many requests of one key and model, admitted here without Redis.",
            registry=r,
        )
        self.admission_outages = counter(
            "switchyard_admission_store_outages",
            "Admissions made while Redis was unreachable, by outcome (open: admitted unchecked, closed: 503).",
            ["outcome"],
            registry=r,
        )
        self.cost = counter(
            "switchyard_cost_usd",
            "Cost of served requests in USD, by tenant and model.",
            ["tenant", "model"],
            registry=r,
        )
        self.alerts = counter(
            "switchyard_alerts", "Operational alerts sent, by type (circuit_open, failover_rate).", ["type"], registry=r
        )
        self.budget_alerts = counter(
            "switchyard_budget_alerts",
            "Soft-budget thresholds crossed, by tenant, scope and percentage.",
            ["tenant", "scope", "threshold"],
            registry=r,
        )
        self.config_reloads = counter("switchyard_config_reloads", "Config reloads by result.", ["result"], registry=r)
        self.ledger_backlog = Gauge(
            "switchyard_ledger_backlog_records",
            "Usage records not yet written to Redis (queued or spooled).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.backend_healthy = Gauge(
            "switchyard_backend_healthy",
            "Self-hosted servers (vLLM): 1 if the last check passed.",
            ["provider"],
            registry=r,
            multiprocess_mode="max",
        )
        self.backend_running = Gauge(
            "switchyard_backend_requests_running",
            "Requests running on a vLLM server, as it reports.",
            ["provider"],
            registry=r,
            multiprocess_mode="max",
        )
        self.backend_waiting = Gauge(
            "switchyard_backend_requests_waiting",
            "Requests queued on a vLLM server, as it reports.",
            ["provider"],
            registry=r,
            multiprocess_mode="max",
        )
        self.backend_kv_cache = Gauge(
            "switchyard_backend_kv_cache_usage_ratio",
            "KV-cache usage of a vLLM server (0..1).",
            ["provider"],
            registry=r,
            multiprocess_mode="max",
        )
        # OpenTelemetry GenAI semantic conventions (gen_ai.client.* / gen_ai.server.*), attributes as labels.
        genai = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"]
        self.genai_duration = histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
            [*genai, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.genai_tokens = histogram(
            "gen_ai_client_token_usage",
            "Tokens per operation by gen_ai_token_type input/output (OpenTelemetry gen_ai.client.token.usage).",
            [*genai, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.genai_ttft = histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first token of a stream (OpenTelemetry gen_ai.server.time_to_first_token).",
            genai,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.time_per_output_token = histogram(
            "switchyard_time_per_output_token_seconds",
            "Streams: (duration - time to first token) / (output tokens - 1).",
            ["model", "deployment"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.budget_utilization = Gauge(
            "switchyard_budget_utilization_ratio",
            "Spend / limit of each configured budget (scope: tenant, team:<name> or key:<id>).",
            ["tenant", "scope", "period"],
            registry=r,
            multiprocess_mode="max",
        )
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._collectors: list[Any] = []

    def observe(
        self,
        *,
        model: str,
        deployment: str,
        endpoint: str,
        status: int,
        duration: float,
        ttft: float | None,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int,
        reasoning_tokens: int,
        provider_kind: str = "",
        upstream_model: str = "",
        error_type: str | None = None,
    ) -> None:
        key = (model, deployment, endpoint)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, model, deployment, endpoint, provider_kind, upstream_model)
        series.requests(status).inc()
        series.duration.observe(duration)
        if ttft is not None:
            series.ttft.observe(ttft)
        if prompt_tokens:
            series.prompt.inc(prompt_tokens)
        if completion_tokens:
            series.completion.inc(completion_tokens)
        if cached_tokens:
            series.cached.inc(cached_tokens)
        if reasoning_tokens:
            series.reasoning.inc(reasoning_tokens)
        if error_type is None:
            series.genai_ok.observe(duration)
        else:
            self.genai_duration.labels(*series.genai, error_type).observe(duration)
        if prompt_tokens or completion_tokens:
            series.genai_input.observe(prompt_tokens)
            series.genai_output.observe(completion_tokens)
        if ttft is not None:
            series.genai_ttft.observe(ttft)
            if completion_tokens > 1 and duration > ttft:
                series.tpot.observe((duration - ttft) / (completion_tokens - 1))

    def _labelled(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once per label set instead of per request."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def spent(self, tenant: str, model: str, usd: float) -> None:
        self._labelled(self.cost, tenant, model).inc(usd)

    def attempt(self, model: str, deployment: str, outcome: str) -> None:
        self._labelled(self.attempts, model, deployment, outcome).inc()
        if outcome != "success":
            self.upstream_errors.labels(model, deployment, outcome).inc()

    def set_circuits(self, states: dict[str, str]) -> None:
        """One series per deployment the breakers know, 1 on its current state."""
        self.circuit_state.clear()
        for deployment, state in states.items():
            self.circuit_state.labels(deployment, state).set(1)

    def set_backends(self, loads: dict[str, ServerLoad]) -> None:
        """Replace the backend gauges with the current providers' last reports."""
        gauges = (self.backend_healthy, self.backend_running, self.backend_waiting, self.backend_kv_cache)
        for gauge in gauges:
            gauge.clear()
        for name, load in loads.items():
            self.backend_healthy.labels(name).set(1 if load.healthy else 0)
            for gauge, value in zip(gauges[1:], (load.running, load.waiting, load.kv_cache_usage), strict=True):
                if value is not None:
                    gauge.labels(name).set(value)

    def add_collector(self, collector: Any) -> None:
        """A collector read at scrape time (per process: its figures are this worker's)."""
        self.registry.register(collector)
        self._collectors.append(collector)

    def exposition(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        for collector in self._collectors:
            registry.register(collector)
        return generate_latest(registry)


class _Series:
    """The labelled children for one (model, deployment, endpoint), looked up once instead of per request."""

    __slots__ = (
        "_by_class",
        "_labels",
        "_metrics",
        "cached",
        "completion",
        "duration",
        "genai",
        "genai_input",
        "genai_ok",
        "genai_output",
        "genai_ttft",
        "prompt",
        "reasoning",
        "tpot",
        "ttft",
    )

    def __init__(
        self, metrics: Metrics, model: str, deployment: str, endpoint: str, provider: str, upstream_model: str
    ) -> None:
        self._metrics = metrics
        self._labels = (model, deployment, endpoint)
        self._by_class: dict[int, Any] = {}
        self.duration = metrics.duration.labels(model, deployment, endpoint)
        self.ttft = metrics.ttft.labels(model, deployment)
        self.prompt = metrics.tokens.labels(model, deployment, "prompt")
        self.completion = metrics.tokens.labels(model, deployment, "completion")
        self.cached = metrics.tokens.labels(model, deployment, "cached")
        self.reasoning = metrics.tokens.labels(model, deployment, "reasoning")
        self.genai = (_OPERATIONS.get(endpoint, endpoint), provider or "none", model, upstream_model or "none")
        self.genai_ok = metrics.genai_duration.labels(*self.genai, "")
        self.genai_input = metrics.genai_tokens.labels(*self.genai, "input")
        self.genai_output = metrics.genai_tokens.labels(*self.genai, "output")
        self.genai_ttft = metrics.genai_ttft.labels(*self.genai)
        self.tpot = metrics.time_per_output_token.labels(model, deployment)

    def requests(self, status: int) -> Any:
        child = self._by_class.get(status)
        if child is None:
            model, deployment, endpoint = self._labels
            child = self._by_class[status] = self._metrics.requests.labels(
                model, deployment, self.genai[1], endpoint, f"{status // 100}xx", str(status) if status >= 400 else ""
            )
        return child
