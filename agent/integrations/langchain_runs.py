"""The LangChain runs in flight: their span records keyed by ``run_id``, their place in the context, RAG documents.

Why a table and no "current run": one handler serves every run of the process, parallel (``batch``,
``RunnableParallel``) and async alike, and LangChain names each event's run and parent. The table is
bounded: a run that never ends (a stream dropped in a way LangChain never reports) is evicted, oldest
first, ended as ``abandoned`` and counted.

Why a stand-in span (:class:`RunSpan`) as the current llmpulse span while a run is active, and not its
record: LangChain's events do not always arrive in the context that started the run. An async chat
model reports its end from a task of its own, and a stream that ends early ends its chain before its
model. The context that started the run then keeps the stand-in after the run ended; an ended stand-in
is *retired*: it takes the ids and kind of the span that was current before the run, so a client call
or ``@observe`` function there nests where it would have without the run, and nothing is folded into a
span already exported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from llmpulse.agent.sdk.calls import call_options
from llmpulse.agent.sdk.spans import UNSAMPLED, SpanRecord, current_span, end_span

MAX_RUNS = 10_000
"""Runs in flight at most; beyond, the oldest is ended as abandoned (a leak bounded, and counted)."""
MAX_DOCUMENTS = 200
"""Retrieved documents kept per chain as RAG context; more are counted, not kept."""

_RETIRED = call_options("langchain.ended_run", kind="chain")


class RunSpan(SpanRecord):
    """The current llmpulse span while a LangChain run is active: the run's ids, never exported itself.

    A client call folded into it (``inner_call``) and fields set with ``update_current_span`` (``extra``)
    are handed to the run's record when the run ends.
    """

    __slots__ = ("ended", "previous", "record", "run_id")

    def __init__(self, run_id: Any, record: SpanRecord, previous: Any) -> None:  # no super().__init__: no new ids
        self.run_id = run_id
        self.record = record
        self.previous = previous
        self.ended = False
        self.options = record.options
        self.trace_id = record.trace_id
        self.span_id = record.span_id
        self.parent_id = record.parent_id
        self.args = ()
        self.kwargs = {}
        self.scoped = None
        self.extra = None
        self.inner_call = None
        self.llm_child = False
        self.first_chunk_ns = 0
        self.chunks = None
        self.result = None
        self.error = None
        self.stream_state = None
        self.status_message = None
        self.name = None
        self.start_ns = record.start_ns
        self.end_ns = 0

    def retire(self) -> Any:
        """Hand over to the record and act, from now on, as the live span current before the run; that span.

        The record and the chain of earlier spans are let go: a context that keeps a retired stand-in keeps
        nothing else alive.
        """
        self.ended = True
        record = self.record
        if self.inner_call is not None and record.inner_call is None:
            record.inner_call = self.inner_call
        if self.extra:
            record.extra = {**(record.extra or {}), **self.extra}
        live = live_span(self.previous)
        self.previous = live
        self.record = None  # type: ignore[assignment]
        self.inner_call = None
        self.extra = None
        if isinstance(live, SpanRecord):
            self.options, self.trace_id, self.span_id, self.parent_id = (
                live.options,
                live.trace_id,
                live.span_id,
                live.parent_id,
            )
        else:  # the run was a root: later calls there nest under it, in its trace, and fold into nothing
            self.options = _RETIRED
        return live


def live_span(span: Any) -> Any:
    """``span``, or, when it is a retired stand-in, the live span it gave way to."""
    while type(span) is RunSpan and span.ended:
        span = span.previous
    return span


def root_parent(span: Any, running_run_id: Any) -> Any:
    """The llmpulse span a LangChain run with no parent run nests under, from the context's current ``span``.

    A run's stand-in found there is the parent only while that run's own code is running here
    (``running_run_id``: LangChain's child config names it, e.g. a tool's body calling another chain with
    callbacks of its own). Otherwise it is a sibling started in the same context (``batch`` starts every
    input's run before any runs) or a run already ended, and the run nests where that one did.
    """
    while type(span) is RunSpan and (span.ended or span.run_id != running_run_id):
        span = span.previous
    return span


class Run:
    """One LangChain run: its record (None when not recorded), its stand-in span, its parent, its RAG documents."""

    __slots__ = ("documents", "folded_into", "kwargs", "outer", "parent", "record", "span")

    def __init__(self, record: SpanRecord | None, parent: Run | None, outer: Any) -> None:
        self.record = record
        self.parent = parent
        self.outer = outer  # the llmpulse span the run tree nests under (an @observe span), or None
        self.span: RunSpan | None = None
        self.documents: list[str] | None = None
        self.folded_into: SpanRecord | None = None  # the enclosing LLM span this LLM run was folded into
        self.kwargs: dict[str, Any] | None = None

    def ancestors(self) -> Iterator[Run]:
        run = self.parent
        while run is not None:
            yield run
            run = run.parent


class RunTable:
    """Runs in flight by ``run_id``, shared by every handler (a run seen by two handlers is recorded once)."""

    def __init__(self, limit: int = MAX_RUNS) -> None:
        self.limit = limit
        self._runs: dict[Any, Run] = {}
        self._lock = threading.Lock()
        self.evicted = 0
        self.documents_dropped = 0
        self.callback_errors = 0

    def count_error(self) -> None:
        with self._lock:
            self.callback_errors += 1

    def get(self, run_id: Any) -> Run | None:
        return self._runs.get(run_id)

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, run_id: Any, run: Run) -> bool:
        """Put a started run in flight; False when another handler did first (the caller drops its own)."""
        evicted: list[Run] = []
        with self._lock:
            if run_id in self._runs:
                return False
            self._runs[run_id] = run
            while len(self._runs) > self.limit:
                evicted.append(self._runs.pop(next(iter(self._runs))))
            self.evicted += len(evicted)
        for old in evicted:
            abandon(old)
        return True

    def pop(self, run_id: Any) -> Run | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def keep_documents(self, run: Run, texts: list[str]) -> None:
        """The documents a retriever run returned, as RAG context of every chain it ran in (and the span around)."""
        if not texts:
            return
        with self._lock:
            for ancestor in run.ancestors():
                ancestor.documents = self._appended(ancestor.documents, texts)
            outer = run.outer
            if isinstance(outer, SpanRecord) and outer is not UNSAMPLED:
                extra = outer.extra if outer.extra is not None else {}
                extra["rag_context"] = self._appended(_as_list(extra.get("rag_context")), texts)
                outer.extra = extra

    def _appended(self, documents: list[str] | None, texts: list[str]) -> list[str]:
        kept = list(documents or ())
        room = MAX_DOCUMENTS - len(kept)
        if room < len(texts):
            self.documents_dropped += len(texts) - max(room, 0)
        kept.extend(texts[: max(room, 0)])
        return kept

    def rag_context(self, parent: Run | None, outer: Any) -> list[str] | None:
        """The documents an LLM run starting under ``parent`` is grounded on: the nearest chain's, else the span's."""
        run = parent
        while run is not None:
            if run.documents:
                return list(run.documents)
            run = run.parent
        if isinstance(outer, SpanRecord) and outer.extra:
            context = outer.extra.get("rag_context")
            if context:
                return _as_list(context)
        return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def enter(run_id: Any, run: Run) -> None:
    """Make the run's stand-in the current llmpulse span (nested client calls and ``@observe`` nest under it)."""
    record = run.record
    if record is None:
        return
    run.span = RunSpan(run_id, record, live_span(current_span.get()))
    current_span.set(run.span)


def leave(run: Run) -> None:
    """Give the current span back, in this context if the run's stand-in is current here, and retire it."""
    span = run.span
    if span is None or span.ended:
        return
    live = span.retire()
    if current_span.get() is span:
        current_span.set(live)


def abandon(run: Run) -> None:
    """End a run evicted from the table: it never ended, so its span says so."""
    leave(run)
    record = run.record
    if record is not None and not record.end_ns:
        record.stream_state = "abandoned"
        end_span(record)
