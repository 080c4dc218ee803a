"""``instrument("llamaindex")``: LlamaIndex queries, retrievals, syntheses and LLM calls as one trace.

A span handler and an event handler on ``llama_index.core.instrumentation``'s root dispatcher, which every
LlamaIndex component reports to. Of the many dispatcher spans, four kinds are kept:

* ``query`` / ``aquery`` of a query engine, ``retrieve`` / ``aretrieve`` of a retriever and ``synthesize`` /
  ``asynthesize`` of a response synthesizer become chain spans (``query RetrieverQueryEngine``...);
* ``chat`` / ``complete`` (async and streaming too) of an LLM become LLM spans, their request and response
  in the OpenAI shapes the SDK parses (``llamaindex_shapes``), so model, tokens and cost come for free.

The others are skipped, but the tree stays connected: a kept span's parent is its nearest kept ancestor
(an LLM call inside an LLM call, ``CustomLLM.chat`` calling ``complete``, is the same call). A root's
parent is the current llmpulse span, so a query inside ``@observe`` nests under it. While a kept span runs
it is the current llmpulse span: an instrumented OpenAI client call inside an LLM span is folded into it.

The nodes a retriever returned (and the nodes a synthesizer was given) become the RAG context of the LLM
calls below them in the same query, which is what the hallucination analyzer grounds the answer in.
Dispatcher span ids map to their state in one bounded dict under a lock (spans start and end in any
thread or task); past ``MAX_OPEN`` open spans new ones go unrecorded and are counted in ``stats()``
(``dropped_by_reason["llamaindex_untracked"]``). Nothing here raises into the app.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
)
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llmpulse.agent._log import logger
from llmpulse.agent.sdk import state
from llmpulse.agent.sdk.calls import call_options, fail_call, finish_call, start_call
from llmpulse.agent.sdk.spans import UNSAMPLED, SpanRecord, current_span, end_span
from pydantic import PrivateAttr

from . import llamaindex_shapes as shapes
from .llamaindex_streams import is_stream, relay_response, stream_owner

MAX_OPEN = 10_000
"""Open dispatcher spans tracked at once (kept or not); more are left unrecorded and counted."""
DROP_REASON = "llamaindex_untracked"

# method -> operation; the operation's owner class is checked on the instance.
_OPERATIONS = {
    "query": "query",
    "aquery": "query",
    "retrieve": "retrieve",
    "aretrieve": "retrieve",
    "synthesize": "synthesize",
    "asynthesize": "synthesize",
    "chat": "chat",
    "achat": "chat",
    "stream_chat": "chat",
    "astream_chat": "chat",
    "complete": "text_completion",
    "acomplete": "text_completion",
    "stream_complete": "text_completion",
    "astream_complete": "text_completion",
}
_OWNERS: dict[str, type] = {
    "query": BaseQueryEngine,
    "retrieve": BaseRetriever,
    "synthesize": BaseSynthesizer,
    "chat": BaseLLM,
    "text_completion": BaseLLM,
}
_LLM_OPERATIONS = ("chat", "text_completion")
_UNKNOWN = object()


class _Node:
    """A kept dispatcher span: its llmpulse record and what its descendants need (parent, RAG context)."""

    __slots__ = (
        "active_stream",
        "component",
        "context",
        "deltas",
        "done",
        "fold_into",
        "instance_id",
        "kind",
        "kwargs",
        "method",
        "model",
        "parent",
        "partial",
        "record",
        "span_id",
        "streaming",
        "token",
    )

    def __init__(self, span_id: str, kind: str, parent: _Node | None, component: str) -> None:
        self.span_id = span_id
        self.kind = kind  # query | retrieve | synthesize | chat | text_completion
        self.parent = parent
        self.component = component
        self.record: SpanRecord | None = None
        self.context: list[str] | None = None  # RAG context for the LLM calls below this span
        self.token: Any = None  # current_span token while the span runs
        self.done = False
        self.streaming = False
        self.partial: Any = None  # the last streamed response (an abandoned stream's output)
        self.deltas: list[str] | None = None  # the streamed text as the reader got it, chunk by chunk
        self.active_stream: _Node | None = None  # the LLM stream being read under this deferred span
        self.instance_id = 0
        self.method = ""
        self.model: str | None = None
        self.fold_into: SpanRecord | None = None  # an @observe(kind="llm") span this call is folded into
        self.kwargs: dict[str, Any] | None = None

    @property
    def is_llm(self) -> bool:
        return self.kind in _LLM_OPERATIONS


def _operation(span_id: str, instance: Any) -> tuple[str | None, str]:
    """The kept operation of a dispatcher span (None: skipped) and its method name."""
    method = span_id.partition("-")[0].rpartition(".")[2]
    if instance is None:
        return None, method
    operation = _OPERATIONS.get(method)
    if operation is None or not isinstance(instance, _OWNERS[operation]):
        return None, method
    return operation, method


class Tracker:
    """The state of the open dispatcher spans and the spans they became; shared by both handlers."""

    def __init__(self, max_open: int = MAX_OPEN) -> None:
        self.max_open = max_open
        self._lock = threading.RLock()  # re-entrant: a finalizer may run during a collection inside it
        self._spans: dict[str, _Node | None] = {}  # dispatcher span id -> nearest kept node (None: none)
        self._opening: dict[int, _Node] = {}  # id(llm) -> its async stream not yet started (see _inner_of)

    # ------------------------------------------------------------------------------------------ spans

    def enter(self, span_id: str, bound_args: Any, instance: Any, parent_id: str | None) -> None:
        if state.pipeline is None:
            return
        operation, method = _operation(span_id, instance)
        with self._lock:
            ancestor = self._spans.get(parent_id, _UNKNOWN) if parent_id is not None else _UNKNOWN
            if ancestor is _UNKNOWN:
                ancestor = stream_owner.get()  # a span started while a streamed response is read
            if operation is not None and ancestor is not None and ancestor.is_llm and operation in _LLM_OPERATIONS:
                operation = None  # an LLM method called by an LLM method: the same call
            if operation is not None and operation in _LLM_OPERATIONS and parent_id is None:
                inner_of = self._inner_of(method, instance)
                if inner_of is not None:
                    operation, ancestor = None, inner_of
            if len(self._spans) >= self.max_open:
                self._count_untracked()
                return
            if operation is None:
                self._spans[span_id] = ancestor
                return
            node = _Node(span_id, operation, ancestor, type(instance).__name__)
            self._spans[span_id] = node
        self._start(node, method, bound_args, instance)

    def _inner_of(self, method: str, instance: Any) -> _Node | None:
        """The async stream whose sync twin this is: ``CustomLLM.astream_complete`` reads ``stream_complete``
        lazily, outside the dispatcher span that started it, before its first chunk."""
        if not method.startswith("stream_"):
            return None
        opening = self._opening.get(id(instance))
        return opening if opening is not None and opening.method == "a" + method else None

    def _start(self, node: _Node, method: str, bound_args: Any, instance: Any) -> None:
        try:
            ancestor = node.parent
            extra: dict[str, Any] = {"attributes": {"llamaindex.component": node.component}}
            if node.is_llm:
                stream = method.startswith(("stream_", "astream_"))
                kwargs = shapes.llm_request(node.kind, instance, bound_args, stream)
                node.model = kwargs.get("model")
                provider = shapes.provider_name(instance, node.model)
                options = call_options(f"{node.component}.{method}", kind="llm", provider=provider, operation=node.kind)
                context = _context_above(ancestor)
                if context:
                    extra["rag_context"] = list(context)
            else:
                kwargs = self._chain_request(node, bound_args)
                options = call_options(f"{node.kind} {node.component}", kind="chain")
            if ancestor is None:
                record = start_call(options, kwargs, extra=extra)
                if record is None and node.is_llm:
                    enclosing = current_span.get()
                    if isinstance(enclosing, SpanRecord) and enclosing.options.kind == "llm":
                        node.fold_into, node.kwargs = enclosing, kwargs
            else:
                record = start_call(options, kwargs, parent=ancestor.record or UNSAMPLED, extra=extra)
            node.record = record
            node.instance_id, node.method = id(instance), method
            if record is not None or node.fold_into is None:  # a folded call leaves the enclosing span current
                node.token = current_span.set(record if record is not None else UNSAMPLED)
        except Exception:
            logger.warning("llmpulse: could not start a LlamaIndex span", exc_info=True)

    @staticmethod
    def _chain_request(node: _Node, bound_args: Any) -> dict[str, Any]:
        if node.kind == "synthesize":
            nodes = shapes.argument(bound_args, "nodes")
            node.context = shapes.node_texts(nodes)
            query = shapes.query_text(shapes.argument(bound_args, "query"))
            return {"query": query, "node_count": len(node.context)}
        return {"query": shapes.query_text(shapes.argument(bound_args, "str_or_query_bundle", "query_bundle"))}

    def exit(self, span_id: str, result: Any) -> None:
        node = self._own(span_id, pop=False)
        if node is None:
            return
        try:
            if node.is_llm and is_stream(result):
                self._stream_started(node, result)
                return
            self._restore(node)
            if node.kind in ("query", "synthesize") and relay_response(result, node, self):
                return  # ends with the streamed response
            self._forget(span_id)
            if node.is_llm:
                self._finish(node, shapes.llm_result(result, node.model))
            elif node.kind == "retrieve":
                items = shapes.retrieved(result)
                self._give_context(node, [item["text"] for item in items])
                self._finish(node, items)
            else:
                self._finish(node, shapes.response_text(result))
        except Exception:
            logger.warning("llmpulse: could not end a LlamaIndex span", exc_info=True)

    def drop(self, span_id: str, err: BaseException | None) -> None:
        node = self._own(span_id, pop=True)
        if node is None:
            return
        self._restore(node)
        self._fail(node, err if err is not None else RuntimeError("LlamaIndex dropped the span"))

    def _own(self, span_id: str, *, pop: bool) -> _Node | None:
        """The node a dispatcher span id started (None for a skipped span, which is forgotten here)."""
        with self._lock:
            node = self._spans.get(span_id)
            if node is None or node.span_id != span_id:
                self._spans.pop(span_id, None)
                return None
            if pop:
                del self._spans[span_id]
            return node

    def _forget(self, span_id: str) -> None:
        with self._lock:
            self._spans.pop(span_id, None)

    @staticmethod
    def _restore(node: _Node) -> None:
        token, node.token = node.token, None
        if token is not None:
            try:
                current_span.reset(token)
            except (ValueError, RuntimeError):  # ended in another context (a future's callback)
                pass

    @staticmethod
    def _give_context(node: _Node, texts: list[str]) -> None:
        """A retriever's nodes become the RAG context of the LLM calls that follow under its parent."""
        parent = node.parent
        if parent is not None and parent.kind != "retrieve" and texts:
            parent.context = (parent.context or []) + texts

    # ---------------------------------------------------------------------------------------- streams

    def _stream_started(self, node: _Node, stream: Any) -> None:
        """An LLM method returned a stream: its span lasts until the stream's end event."""
        node.streaming = True
        node.deltas = []
        if node.record is not None:
            node.record.chunks = []
        ancestor = node.parent
        while ancestor is not None:  # a relay reading a response of theirs makes this call current
            ancestor.active_stream = node  # so the client call it reads lazily is folded into it
            ancestor = ancestor.parent
        if stream_owner.get() is not None:
            node.token = None  # inside a relay step, which resets the current span after the step
        else:
            self._restore(node)
        if node.method.startswith("astream_"):
            with self._lock:
                self._opening[node.instance_id] = node
        weakref.finalize(stream, self._collected, node).atexit = False

    def current_record(self, node: _Node) -> Any:
        active = node.active_stream
        record = active.record if active is not None and not active.done else node.record
        return record if record is not None else UNSAMPLED

    def end_deferred(self, node: _Node, output: str, stream_state: str) -> None:
        self._forget(node.span_id)
        self._finish(node, output, stream_state)

    def fail_deferred(self, node: _Node, exc: BaseException) -> None:
        self._forget(node.span_id)
        self._fail(node, exc)

    def _collected(self, node: _Node) -> None:
        """The stream was garbage-collected unread or unfinished."""
        self._forget(node.span_id)
        self._finish(node, self._streamed(node, node.partial), "abandoned")

    @staticmethod
    def _streamed(node: _Node, response: Any) -> dict[str, Any] | None:
        text = "".join(node.deltas) if node.deltas else None
        return shapes.llm_result(response, node.model, text)

    # ----------------------------------------------------------------------------------------- events

    def on_progress(self, event: Any) -> None:
        node = self._stream_node(event)
        if node is None:
            return
        if node.partial is None:
            if node.record is not None:
                node.record.first_chunk_ns = time.time_ns()
            self._not_opening(node)
        node.partial = event.response
        delta = getattr(event.response, "delta", None)
        if node.deltas is not None:
            if isinstance(delta, str):
                node.deltas.append(delta)
            else:  # a chunk without its delta: the responses' own cumulative text is the output
                node.deltas = None

    def on_end(self, event: Any) -> None:
        node = self._stream_node(event)
        if node is not None:
            self._forget(node.span_id)
            self._finish(node, self._streamed(node, event.response or node.partial), "completed")

    def on_exception(self, event: Any) -> None:
        node = self._stream_node(event)
        if node is None:
            return
        self._forget(node.span_id)
        if isinstance(event.exception, GeneratorExit):  # closed before its end: what it streamed so far
            self._finish(node, self._streamed(node, node.partial), "abandoned")
        else:
            self._fail(node, event.exception)

    def _stream_node(self, event: Any) -> _Node | None:
        span_id = event.span_id
        if span_id is None:
            return None
        with self._lock:
            node = self._spans.get(span_id)
        if node is None or node.span_id != span_id or not node.streaming:
            return None
        return node

    def _not_opening(self, node: _Node) -> None:
        with self._lock:
            if self._opening.get(node.instance_id) is node:
                del self._opening[node.instance_id]

    # ----------------------------------------------------------------------------------------- ending

    def _claim(self, node: _Node) -> bool:
        with self._lock:
            if node.done:
                return False
            node.done = True
        if node.streaming:
            self._not_opening(node)
        return True

    def _finish(self, node: _Node, result: Any, stream_state: str | None = None) -> None:
        if not self._claim(node):
            return
        try:
            record = node.record
            if record is None:
                if node.fold_into is not None and node.kwargs is not None:
                    node.fold_into.inner_call = (node.kwargs, result)
                return
            if stream_state is not None:
                record.stream_state = stream_state
            finish_call(record, result)
        except Exception:
            logger.warning("llmpulse: could not end a LlamaIndex span", exc_info=True)

    def _fail(self, node: _Node, exc: BaseException) -> None:
        if self._claim(node):
            fail_call(node.record, exc)

    def close(self) -> None:
        """End every span still open (on uninstrument or dispatcher shutdown): they would never end."""
        with self._lock:
            nodes = {id(n): n for n in self._spans.values() if n is not None}
            self._spans.clear()
            self._opening.clear()
        for node in nodes.values():
            if self._claim(node) and node.record is not None:
                node.record.stream_state = "abandoned" if node.streaming else None
                end_span(node.record)

    def open_spans(self) -> int:
        with self._lock:
            return len(self._spans)

    @staticmethod
    def _count_untracked() -> None:
        pipeline = state.pipeline
        if pipeline is not None:
            pipeline.count_drop(DROP_REASON, 1)


def _context_above(node: _Node | None) -> list[str] | None:
    while node is not None:
        if node.context:
            return node.context
        node = node.parent
    return None


class SpanHandler(BaseSpanHandler[BaseSpan]):
    """Dispatcher span signals to the tracker. Returns no span objects: the tracker keeps its own state."""

    _tracker: Tracker = PrivateAttr()

    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self._tracker = tracker

    @classmethod
    def class_name(cls) -> str:
        return "LlmpulseSpanHandler"

    def new_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        try:
            self._tracker.enter(id_, bound_args, instance, parent_span_id)
        except Exception:
            logger.warning("llmpulse: LlamaIndex span handler failed", exc_info=True)
        return None

    def prepare_to_exit_span(
        self, id_: str, bound_args: Any, instance: Any | None = None, result: Any | None = None, **kwargs: Any
    ) -> BaseSpan | None:
        try:
            self._tracker.exit(id_, result)
        except Exception:
            logger.warning("llmpulse: LlamaIndex span handler failed", exc_info=True)
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        try:
            self._tracker.drop(id_, err)
        except Exception:
            logger.warning("llmpulse: LlamaIndex span handler failed", exc_info=True)
        return None

    def close(self) -> None:
        self._tracker.close()


class EventHandler(BaseEventHandler):
    """LLM stream events (chunks, end, error) to the tracker; every other event is ignored at once."""

    _tracker: Tracker = PrivateAttr()
    _routes: dict[type, Any] = PrivateAttr()

    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self._tracker = tracker
        self._routes = {
            LLMChatInProgressEvent: tracker.on_progress,
            LLMCompletionInProgressEvent: tracker.on_progress,
            LLMChatEndEvent: tracker.on_end,
            LLMCompletionEndEvent: tracker.on_end,
            ExceptionEvent: tracker.on_exception,
        }

    @classmethod
    def class_name(cls) -> str:
        return "LlmpulseEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        route = self._routes.get(type(event))
        if route is None:
            return
        try:
            route(event)
        except Exception:
            logger.warning("llmpulse: LlamaIndex event handler failed", exc_info=True)


_installed: tuple[SpanHandler, EventHandler] | None = None
_install_lock = threading.Lock()


def instrument(**_options: Any) -> None:
    """Add the handlers to the root dispatcher (once)."""
    global _installed
    with _install_lock:
        if _installed is not None:
            return
        tracker = Tracker()
        handlers = (SpanHandler(tracker), EventHandler(tracker))
        dispatcher = get_dispatcher()
        dispatcher.add_span_handler(handlers[0])
        dispatcher.add_event_handler(handlers[1])
        _installed = handlers


def uninstrument() -> None:
    """Remove both handlers; spans still open end now (they would never get their end signal)."""
    global _installed
    with _install_lock:
        if _installed is None:
            return
        span_handler, event_handler = _installed
        _installed = None
        dispatcher = get_dispatcher()
        # new lists, not in-place removal: a dispatch iterating the old list in another thread is unaffected
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not span_handler]
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not event_handler]
        span_handler.close()


def tracker() -> Tracker | None:
    """The tracker of the installed handlers (tests and diagnostics)."""
    return _installed[0]._tracker if _installed is not None else None
