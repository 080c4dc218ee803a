"""Finished spans as one ``otel_traces`` batch, the way the pipeline's store sink encodes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.export.encode import add_span_rows, span_batch
from llmpulse.agent.store.rows import Batch, RowBuffer


def spans_to_batch(
    spans: Iterable[FinishedSpan], *, service_name: str, resource: Mapping[str, str], scope_version: str
) -> Batch:
    rows = RowBuffer()
    add_span_rows(rows, spans, service_name=service_name, resource=resource, scope_version=scope_version)
    return span_batch(rows)
