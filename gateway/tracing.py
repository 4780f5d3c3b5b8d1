"""Optional OpenTelemetry traces: a span per request and per upstream attempt, with the GenAI semantic
conventions' attributes, the deployment chosen and why; W3C `traceparent` taken from the client and
passed to upstreams.

Off by default, and then free: nothing is imported, and the request path checks one attribute. On
(`tracing.enabled`), spans go through a batch processor to the OTLP/HTTP exporter (the
`opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http` packages: the `tracing` extra).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.asgi_io import Scope, header

if TYPE_CHECKING:
    from gateway.config.schema import TracingConfig

log = logging.getLogger("switchyard.tracing")

_OPERATIONS = {"chat/completions": "chat", "completions": "text_completion", "embeddings": "embeddings"}


class Tracing:
    """The tracer, its provider, and W3C propagation."""

    def __init__(self, config: TracingConfig, exporter: Any = None) -> None:
        """`exporter` replaces the OTLP exporter (tests pass the SDK's in-memory one)."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBasedTraceIdRatio(config.sample_ratio),
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
        else:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer("switchyard")
        self._propagator = TraceContextTextMapPropagator()
        log.info("tracing on: OTLP to %s, sampling %.0f%%", config.endpoint, config.sample_ratio * 100)

    def request_span(self, scope: Scope, endpoint: str, model: str, tenant: str) -> Any:
        """A span for one request, child of the client's `traceparent` when it sends one."""
        from opentelemetry.trace import SpanKind

        carrier = {}
        for name in (b"traceparent", b"tracestate"):
            value = header(scope, name)
            if value:
                carrier[name.decode()] = value.decode("latin-1")
        parent = self._propagator.extract(carrier) if carrier else None
        operation = _OPERATIONS.get(endpoint, endpoint)
        return self.tracer.start_span(
            f"{operation} {model}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": model,
                "switchyard.tenant": tenant,
            },
        )

    def attempt_span(self, parent: Any, deployment: str, provider: str, upstream_model: str) -> Any:
        from opentelemetry.trace import SpanKind, set_span_in_context

        return self.tracer.start_span(
            f"attempt {deployment}",
            context=set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": upstream_model,
                "switchyard.deployment": deployment,
            },
        )

    def headers(self, span: Any) -> tuple[tuple[str, str], ...]:
        """`traceparent` (and `tracestate`) for an upstream request made inside `span`."""
        from opentelemetry.trace import set_span_in_context

        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=set_span_in_context(span))
        return tuple(carrier.items())

    def shutdown(self) -> None:
        self._provider.shutdown()


def finish_span(
    span: Any, *, status: int, attributes: dict[str, Any], error: str | None = None, end_time: int | None = None
) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", error or str(status))
        span.set_status(Status(StatusCode.ERROR, error or str(status)))
    span.end(end_time=end_time)
