"""GenAI events and retrieval documents joined to the LLM spans they belong to, in the receiver's memory.

An instrumentation that sends a call's prompt and response as events (OTLP logs: ``gen_ai.user.message``,
``gen_ai.choice``, ``gen_ai.client.inference.operation.details``) exports them apart from the span, in
either order. Events that arrive first wait here (``event_ttl``) for their span, which takes their content
when it is decoded. A span that arrives first without content, from a source that sends events (a known
emitter, or one that has sent GenAI events to this receiver), is stored in ``otel_traces`` at once, marked
``llmpulse.llm_calls.deferred`` so that ``llm_calls``' view skips it, and its row waits here for up to
``wait`` seconds; when its response event arrives (or the wait ends) the row, with whatever content came,
goes to ``otel_traces_joined``, whose view writes its ``llm_calls`` row. Nothing is held that is not also
stored: the events are in ``otel_logs``, the span in ``otel_traces``; after a crash, ``recovery`` puts the
spans that were waiting back here.

Retrieval spans (OpenInference retrievers, semconv ``retrieval``) leave their documents here for
``event_ttl`` too; an LLM span of the same trace that starts after a retriever ended takes them as its RAG
context (``llmpulse.rag.context``).

Everything is bounded (waiting spans, bytes of waiting events and documents) and counted (``JoinStats``).
Decode threads and the event loop share it under one lock; each change a request makes can be undone
when the request is refused (503), so its retry does not count twice.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from llmpulse.agent import semconv as sc
from llmpulse.agent.store import fastjson
from llmpulse.agent.store.rows import Batch, RowBuffer
from llmpulse.agent.store.schema.traces import JOIN_DEFERRED, TRACE_COLUMNS

from .conventions import LLM_OPERATIONS, RETRIEVAL, retrieval_documents
from .genai_content import OUTPUT_EVENTS, content_from_events, has_content
from .otlp_decode import SpanRow
from .otlp_logs import GenAIEvent

JOINED_TABLE = "otel_traces_joined"
ATTRS = TRACE_COLUMNS.index("SpanAttributes")
_TRACE, _SPAN = TRACE_COLUMNS.index("TraceId"), TRACE_COLUMNS.index("SpanId")
_SERVICE, _SCOPE = TRACE_COLUMNS.index("ServiceName"), TRACE_COLUMNS.index("ScopeName")

KNOWN_EVENT_SCOPES = ("opentelemetry.util.genai", "opentelemetry.instrumentation.")
"""Scope names of instrumentations that send content as events (OpenTelemetry's own GenAI instrumentations)."""
DEFAULT_WAIT_S = 10.0
EVENT_TTL_S = 120.0
SOURCE_TTL_S = 3600.0  # a source that sent GenAI events is remembered this long
MAX_SOURCES = 10_000
MAX_WAITING = 20_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_CONTEXT_CHARS = 100_000  # as the SDK clips a captured context


@dataclass
class JoinStats:
    events_joined: int = 0  # events whose content went to their span
    events_unmatched: int = 0  # no span took them in time (kept in otel_logs only)
    spans_deferred: int = 0  # stored first, llm_calls row written when their events came or the wait ended
    spans_joined: int = 0  # deferred spans written with events
    spans_without_events: int = 0  # deferred spans whose wait ended with no event
    spans_not_deferred: int = 0  # too many spans waiting: written at once, without waiting for events
    contexts_attached: int = 0  # LLM spans given the documents of their trace's retriever


@dataclass
class _Waiting:
    row: list[Any]  # the row for otel_traces_joined: the span as stored, without the deferral mark
    start_ns: int
    deadline: float
    events: list[GenAIEvent] = field(default_factory=list)


@dataclass
class _Pending:
    expires: float
    events: list[GenAIEvent] = field(default_factory=list)
    size: int = 0


@dataclass
class _Documents:
    expires: float
    by_span: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # span id -> (end time, texts)
    size: int = 0


class Undo:
    """Reverts what one request changed in the join (its answer was 503: the client sends it again)."""

    def __init__(self, join: GenAIJoin) -> None:
        self._join = join
        self.actions: list[Callable[[], None]] = []

    def __call__(self) -> None:
        with self._join._lock:
            self.run()

    def run(self) -> None:
        """Revert, the join's lock held by the caller."""
        for action in reversed(self.actions):
            action()
        self.actions.clear()


def _size(event: GenAIEvent) -> int:
    return len(fastjson.dumps_bytes([event.attributes, event.body])) + 200


@contextmanager
def _reverted_on_error(undo: Undo) -> Iterator[None]:
    """A failure half-way leaves the join as it was (the receiver logs it and stores the request unjoined)."""
    try:
        yield
    except BaseException:
        undo.run()
        raise


class GenAIJoin:
    def __init__(
        self,
        wait: float = DEFAULT_WAIT_S,
        *,
        event_ttl: float = EVENT_TTL_S,
        max_waiting: int = MAX_WAITING,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        price: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wait = wait
        self.event_ttl = max(event_ttl, wait)
        self.max_waiting = max_waiting
        self.max_pending_bytes = max_pending_bytes
        self.price = price  # adds llmpulse.cost.usd to a span whose tokens came with its events
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: OrderedDict[tuple[str, str], _Waiting] = OrderedDict()
        self._pending: OrderedDict[tuple[str, str], _Pending] = OrderedDict()
        self._pending_bytes = 0
        self._documents: OrderedDict[str, _Documents] = OrderedDict()
        self._document_bytes = 0
        self._sources: dict[tuple[str, str], float] = {}
        self.stats = JoinStats()

    # --- sizes, for /metrics ---------------------------------------------------------------------------------

    def waiting_spans(self) -> int:
        return len(self._waiting)

    def pending_events(self) -> int:
        return sum(len(p.events) for p in list(self._pending.values()))

    def is_waiting(self, trace_id: str, span_id: str) -> bool:
        return (trace_id, span_id) in self._waiting

    # --- spans -----------------------------------------------------------------------------------------------

    def spans(self, spans: list[SpanRow]) -> Undo:
        """Join one request's GenAI and retrieval spans (before their rows are encoded)."""
        undo = Undo(self)
        now = self._clock()
        with self._lock, _reverted_on_error(undo):
            for span in spans:
                if span.attrs.get(sc.GEN_AI_OPERATION_NAME) == RETRIEVAL:
                    self._keep_documents(span, now, undo)
            for span in spans:
                if span.attrs.get(sc.GEN_AI_OPERATION_NAME) in LLM_OPERATIONS:
                    self._llm_span(span, now, undo)
        return undo

    def _llm_span(self, span: SpanRow, now: float, undo: Undo) -> None:
        attrs, row = span.attrs, span.row
        key = (row[_TRACE], row[_SPAN])
        self._attach_context(attrs, row[_TRACE], span.start_ns)
        pending = self._pending.pop(key, None)
        if pending is not None:
            self._pending_bytes -= pending.size
            undo.actions.append(lambda: self._put_pending(key, pending))
            self._merge(attrs, pending.events)
        if has_content(attrs) or self.wait <= 0 or not self._sends_events(row[_SERVICE], row[_SCOPE], now):
            return
        if key in self._waiting:
            return  # a retry of a span that is already waiting: stored again (deduplicated by nobody), joined once
        if len(self._waiting) >= self.max_waiting:
            self.stats.spans_not_deferred += 1
            return
        joined = list(row)
        joined[ATTRS] = dict(attrs)
        attrs[JOIN_DEFERRED] = "true"
        self._waiting[key] = _Waiting(joined, span.start_ns, now + self.wait)
        self.stats.spans_deferred += 1
        undo.actions.append(lambda: self._unwait(key))

    def _unwait(self, key: tuple[str, str]) -> None:
        if self._waiting.pop(key, None) is not None:
            self.stats.spans_deferred -= 1

    def _sends_events(self, service: str, scope: str, now: float) -> bool:
        if scope.startswith(KNOWN_EVENT_SCOPES):
            return True
        seen = self._sources.get((service, scope))
        return seen is not None and now - seen < SOURCE_TTL_S

    # --- events ----------------------------------------------------------------------------------------------

    def events(self, events: Iterable[GenAIEvent]) -> tuple[list[list[Any]], Undo]:
        """Join one request's GenAI events: the rows of waiting spans they complete, for ``otel_traces_joined``."""
        undo = Undo(self)
        released: list[list[Any]] = []
        now = self._clock()
        groups: dict[tuple[str, str], list[GenAIEvent]] = {}
        for event in events:
            groups.setdefault((event.trace_id, event.span_id), []).append(event)
        with self._lock, _reverted_on_error(undo):
            for source in {(e.service, e.scope) for group in groups.values() for e in group}:
                self._sources.pop(source, None)  # re-inserted last: the dict stays ordered by time seen
                self._sources[source] = now
                if len(self._sources) > MAX_SOURCES:
                    del self._sources[next(iter(self._sources))]
            for key, group in groups.items():
                waiting = self._waiting.get(key)
                if waiting is None:
                    self._add_pending(key, group, now, undo)
                    continue
                waiting.events.extend(group)
                added = len(group)
                undo.actions.append(lambda w=waiting, n=added: w.events.__delitem__(slice(len(w.events) - n, None)))
                if any(event.name in OUTPUT_EVENTS for event in group):
                    del self._waiting[key]
                    undo.actions.append(lambda k=key, w=waiting: self._rewait(k, w))
                    released.append(self._finish(waiting))
        return released, undo

    def _add_pending(self, key: tuple[str, str], group: list[GenAIEvent], now: float, undo: Undo) -> None:
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(now + self.event_ttl)
        size = sum(_size(event) for event in group)
        pending.events.extend(group)
        pending.size += size
        self._pending_bytes += size

        def remove(p: _Pending = pending, n: int = len(group), size: int = size) -> None:
            del p.events[len(p.events) - n :]
            p.size -= size
            self._pending_bytes -= size
            if not p.events and self._pending.get(key) is p:
                del self._pending[key]

        undo.actions.append(remove)
        while self._pending_bytes > self.max_pending_bytes and len(self._pending) > 1:
            _, oldest = self._pending.popitem(last=False)
            self._pending_bytes -= oldest.size
            self.stats.events_unmatched += len(oldest.events)

    def _put_pending(self, key: tuple[str, str], pending: _Pending) -> None:
        current = self._pending.get(key)
        if current is not None:
            current.events[:0] = pending.events
            current.size += pending.size
        else:
            self._pending[key] = pending
        self._pending_bytes += pending.size
        self.stats.events_joined -= len(pending.events)

    def _rewait(self, key: tuple[str, str], waiting: _Waiting) -> None:
        self._waiting[key] = waiting
        if waiting.events:
            self.stats.spans_joined -= 1
        else:
            self.stats.spans_without_events -= 1
        self.stats.events_joined -= len(waiting.events)

    # --- content ---------------------------------------------------------------------------------------------

    def _merge(self, attrs: dict[str, Any], events: list[GenAIEvent]) -> None:
        """The events' content (and operation details the span lacks) into the span's attributes."""
        content, extra = content_from_events((e.name, e.attributes, e.body) for e in events)
        for key, value in content.items():
            if not attrs.get(key):
                attrs[key] = value
        for key, value in extra.items():
            attrs.setdefault(key, value)
        if sc.COST_USD not in attrs and self.price is not None:
            self.price(attrs)
        self.stats.events_joined += len(events)

    def _finish(self, waiting: _Waiting) -> list[Any]:
        """A waiting span's row for ``otel_traces_joined``: its events' content and its trace's documents."""
        attrs = waiting.row[ATTRS]
        if waiting.events:
            self._merge(attrs, waiting.events)
            self.stats.spans_joined += 1
        else:
            self.stats.spans_without_events += 1
        self._attach_context(attrs, waiting.row[_TRACE], waiting.start_ns)
        return waiting.row

    # --- retrieval documents ---------------------------------------------------------------------------------

    def _keep_documents(self, span: SpanRow, now: float, undo: Undo) -> None:
        texts = retrieval_documents(span.attrs)
        if not texts:
            return
        trace_id, span_id = span.row[_TRACE], span.row[_SPAN]
        documents = self._documents.get(trace_id)
        if documents is None:
            documents = self._documents[trace_id] = _Documents(now + self.event_ttl)
        size = sum(len(t) for t in texts)
        previous = documents.by_span.get(span_id)
        documents.by_span[span_id] = (span.end_ns, texts)
        documents.size += size - (sum(len(t) for t in previous[1]) if previous else 0)
        self._document_bytes += size - (sum(len(t) for t in previous[1]) if previous else 0)
        while self._document_bytes > MAX_DOCUMENT_BYTES and len(self._documents) > 1:
            _, oldest = self._documents.popitem(last=False)
            self._document_bytes -= oldest.size

    def _attach_context(self, attrs: dict[str, Any], trace_id: str, start_ns: int) -> None:
        """The documents of the trace's retrievers that ended before the call started (all of them when none
        did: the two spans came from hosts whose clocks differ)."""
        documents = self._documents.get(trace_id)
        if documents is None or attrs.get(sc.RAG_CONTEXT):
            return
        found = sorted(documents.by_span.values(), key=lambda item: item[0])
        before = [texts for end, texts in found if end <= start_ns] or [texts for _, texts in found]
        text = "\n\n".join(t for texts in before for t in texts)
        if text:
            attrs[sc.RAG_CONTEXT] = (
                text if len(text) <= MAX_CONTEXT_CHARS else text[:MAX_CONTEXT_CHARS] + "…[truncated]"
            )
            self.stats.contexts_attached += 1

    # --- time ------------------------------------------------------------------------------------------------

    def expired(self) -> list[list[Any]]:
        """The rows of spans whose wait has ended; drops events, documents and sources past their time."""
        now = self._clock()
        released: list[list[Any]] = []
        with self._lock:
            while self._waiting:
                key, waiting = next(iter(self._waiting.items()))
                if waiting.deadline > now:
                    break
                del self._waiting[key]
                released.append(self._finish(waiting))
            while self._pending:
                key, pending = next(iter(self._pending.items()))
                if pending.expires > now:
                    break
                del self._pending[key]
                self._pending_bytes -= pending.size
                self.stats.events_unmatched += len(pending.events)
            while self._documents:
                trace_id, documents = next(iter(self._documents.items()))
                if documents.expires > now:
                    break
                del self._documents[trace_id]
                self._document_bytes -= documents.size
            while self._sources and now - next(iter(self._sources.values())) >= SOURCE_TTL_S:
                del self._sources[next(iter(self._sources))]
        return released

    def drain(self) -> list[list[Any]]:
        """The rows of every waiting span now (the agent is stopping)."""
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), OrderedDict()
            return [self._finish(w) for w in waiting]

    def restore(self, items: Iterable[tuple[list[Any], int, list[GenAIEvent]]]) -> int:
        """Spans found waiting in the store after a restart (``recovery``), with their stored events: written
        at the next ``expired``. Spans waiting here already are skipped; returns how many were added."""
        now = self._clock()
        added = 0
        with self._lock:
            for row, start_ns, events in items:
                key = (row[_TRACE], row[_SPAN])
                if key not in self._waiting:
                    self._waiting[key] = _Waiting(row, start_ns, now, list(events))
                    self._waiting.move_to_end(key, last=False)  # due now: first in deadline order
                    added += 1
        return added


def joined_batch(rows: list[list[Any]]) -> Batch:
    """Rows of spans the join completed, for ``otel_traces_joined`` (and through its view, ``llm_calls``)."""
    buffer = RowBuffer()
    for row in rows:
        buffer.append(row)
    return Batch(JOINED_TABLE, TRACE_COLUMNS, buffer.data, "", buffer.count)
