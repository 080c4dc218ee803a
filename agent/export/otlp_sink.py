"""The OTLP sink: sends spans and GenAI metrics through the OpenTelemetry SDK's own exporters.

Used when an OTLP endpoint is configured (a sidecar, a collector, any OTLP backend). Spans are handed
over as SDK ``ReadableSpan`` objects, so the official ``OTLPSpanExporter`` does the protocol work. The
pipeline imports this module only when OTLP export is configured: it loads the OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse.agent import semconv as sc
from llmpulse.agent._log import logger
from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.store import fastjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .stats import Counters

_KINDS = {
    "Client": SpanKind.CLIENT,
    "Internal": SpanKind.INTERNAL,
    "Server": SpanKind.SERVER,
    "Producer": SpanKind.PRODUCER,
    "Consumer": SpanKind.CONSUMER,
}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _otel_value(value: Any) -> Any:
    """OTel attribute values are scalars or homogeneous scalar lists; anything else becomes JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    return fastjson.dumps(value)


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _otel_value(value) for key, value in attributes.items()}


def to_readable_span(span: FinishedSpan, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    context = SpanContext(span.trace_id, span.span_id, is_remote=False, trace_flags=_SAMPLED)
    parent = (
        SpanContext(span.trace_id, span.parent_id, is_remote=False, trace_flags=_SAMPLED) if span.parent_id else None
    )
    status = Status(StatusCode.ERROR, span.status_message) if span.status_code == "Error" else Status(StatusCode.UNSET)
    return ReadableSpan(
        name=span.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=_attributes(span.attributes),
        events=[Event(name, _attributes(attrs), timestamp) for timestamp, name, attrs in span.events],
        links=(),
        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
        status=status,
        start_time=span.start_ns,
        end_time=span.end_ns,
        instrumentation_scope=scope,
    )


class OtlpSpanSink:
    """Sends finished spans with the SDK's OTLP/HTTP exporter (which retries on its own)."""

    def __init__(self, endpoint: str, resource: Resource, scope_version: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        self._resource = resource
        self._scope = InstrumentationScope(sc.SCOPE_NAME, scope_version)

    def export(self, spans: Sequence[FinishedSpan]) -> bool:
        readable = [to_readable_span(s, self._resource, self._scope) for s in spans]
        return self._exporter.export(readable) is SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._exporter.shutdown()


class GenAIMetrics:
    """gen_ai.client.* histograms with the semconv bucket boundaries, exported over OTLP."""

    def __init__(self, endpoint: str, resource: Resource, export_interval_s: float = 10.0) -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
            export_interval_millis=int(export_interval_s * 1000),
        )
        self._provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self._provider.get_meter(sc.SCOPE_NAME)
        self._duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_BUCKETS),
        )
        self._ttfc = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )

    def record(self, span: FinishedSpan) -> None:
        if not span.is_llm:
            return
        a = span.attributes
        base = {
            key: a[key]
            for key in (
                sc.GEN_AI_OPERATION_NAME,
                sc.GEN_AI_PROVIDER_NAME,
                sc.GEN_AI_REQUEST_MODEL,
                sc.GEN_AI_RESPONSE_MODEL,
            )
            if a.get(key) is not None
        }
        duration_attrs = dict(base)
        if sc.ERROR_TYPE in a:
            duration_attrs[sc.ERROR_TYPE] = a[sc.ERROR_TYPE]
        self._duration.record((span.end_ns - span.start_ns) / 1e9, duration_attrs)
        for token_type, key in (("input", sc.GEN_AI_USAGE_INPUT_TOKENS), ("output", sc.GEN_AI_USAGE_OUTPUT_TOKENS)):
            if a.get(key) is not None:
                self._tokens.record(int(a[key]), {**base, sc.GEN_AI_TOKEN_TYPE: token_type})
        if a.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) is not None:
            self._ttfc.record(float(a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]), base)

    def flush(self, timeout_s: float) -> None:
        self._provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self._provider.shutdown()


class OtlpSink:
    """The ``Sink`` of an OTLP endpoint: GenAI metrics of each LLM span, then the spans themselves."""

    def __init__(self, endpoint: str, resource_attributes: Mapping[str, str], version: str, counters: Counters) -> None:
        resource = Resource.create(dict(resource_attributes))
        self._spans = OtlpSpanSink(endpoint, resource, version)
        self._metrics = GenAIMetrics(endpoint, resource)
        self._counters = counters

    def export(self, spans: Sequence[FinishedSpan]) -> bool:
        """Record the metrics, send the spans; False when the span export failed (the exporter retried already)."""
        for span in spans:
            try:
                self._metrics.record(span)
            except Exception:
                logger.error("llmpulse: recording GenAI metrics failed", exc_info=True)
        try:
            ok = self._spans.export(spans)
        except Exception:
            logger.error("llmpulse: OTLP span export failed", exc_info=True)
            ok = False
        counters = self._counters
        with counters.lock:
            if ok:
                counters.stats.otlp_exported += len(spans)
            else:
                counters.stats.otlp_failed += len(spans)
        return ok

    def end_batch(self) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        try:
            self._metrics.flush(timeout)
        except Exception:
            logger.warning("llmpulse: metric flush failed", exc_info=True)
        return True

    def shutdown(self) -> None:
        for closer in (self._spans, self._metrics):
            try:
                closer.shutdown()
            except Exception:
                logger.warning("llmpulse: OTLP shutdown failed", exc_info=True)
