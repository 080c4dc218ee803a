"""LangChain: chains, chat models and LLMs, tools and retrievers as nested spans of one trace.

Two ways in, never both at once (a run is recorded once however many llmpulse handlers see it):

* ``instrument("langchain")`` registers :class:`LlmpulseCallbackHandler` with langchain-core's configure
  hook (``register_configure_hook``, the mechanism LangChain's own usage and run collectors use), so every
  run gets it without passing callbacks; ``uninstrument("langchain")`` turns it off;
* explicitly: ``chain.invoke(x, config={"callbacks": [LlmpulseCallbackHandler()]})``.

Runs are keyed by ``run_id`` / ``parent_run_id`` (``langchain_runs``), so one handler serves parallel and
async runs. A run with no parent nests under the current llmpulse span (an ``@observe`` function around
``chain.invoke``), else starts a trace. While a run is active its span is the current llmpulse span: a
client call made inside a chat model run (``ChatOpenAI`` over an instrumented openai client) is folded into
the LangChain LLM span, one call, one LLM span; a client call or ``@observe`` function inside a tool or a
``RunnableLambda`` nests under it. The documents a retriever returns become the RAG context of the LLM runs
that start after it in the same chain (or under the same ``@observe`` span), which the hallucination
analyzer grounds them on.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables.config import var_child_runnable_config
from llmpulse.agent._log import logger
from llmpulse.agent.sdk import state
from llmpulse.agent.sdk.calls import fail_call, finish_call, start_call
from llmpulse.agent.sdk.decorator import ObserveOptions
from llmpulse.agent.sdk.spans import SpanRecord, current_span, end_span

from .langchain_convert import (
    chat_messages,
    completion,
    document_texts,
    metadata_fields,
    model_of,
    provider_of,
    request_kwargs,
)
from .langchain_runs import Run, RunTable, enter, leave, root_parent

RUN_TYPE = "llmpulse.langchain.run_type"
RUN_NAME = "llmpulse.langchain.name"
OPERATION = "llmpulse.operation"
DOCUMENT_COUNT = "llmpulse.retrieval.document_count"

F = TypeVar("F", bound=Callable[..., Any])

_runs = RunTable()
_options: dict[tuple[str, str, str | None], ObserveOptions] = {}
_MAX_OPTIONS = 1024  # run names may be made per request (``run_name=f"q-{id}"``): beyond, options are not kept


def _span_options(name: str, kind: str, operation: str | None = None) -> ObserveOptions:
    key = (name, kind, operation)
    found = _options.get(key)
    if found is None:
        found = ObserveOptions(name=name, kind=kind, operation=operation)
        if len(_options) < _MAX_OPTIONS:
            _options[key] = found
    return found


def _guarded(method: F) -> F:
    """A callback that never raises into LangChain (or the app): errors are logged and counted."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception:
            _runs.count_error()
            logger.warning("llmpulse: LangChain callback %s failed; the run goes on", method.__name__, exc_info=True)
            return None

    return guarded  # type: ignore[return-value]


def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if isinstance(ids, list) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return default


def _is_early_stop(error: BaseException) -> bool:
    """A stream closed before its end (the consumer stopped): the run ends, it did not fail."""
    return isinstance(error, GeneratorExit)


class LlmpulseCallbackHandler(BaseCallbackHandler):
    """Records LangChain runs as llmpulse spans: chains, chat models and LLMs, tools, retrievers.

    Stateless: runs in flight live in one table shared by every instance, so one handler can serve the
    whole process and a second one (explicit beside the global one) records nothing twice.
    ``run_inline``: LangChain calls it in the caller's context for async runs too, so the span of a
    running chat model is the current span where its client call is made.
    """

    run_inline = True
    raise_error = False

    # --- chains (runnables) and retrievers ---------------------------------------------------------------

    @_guarded
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "chain")
        run_type = kwargs.get("run_type") or "chain"
        _start(run_id, parent_run_id, "chain", name, {"input": inputs}, metadata, {RUN_TYPE: run_type})

    @_guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        _end(run_id, outputs, kwargs.get("inputs"))

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        _fail(run_id, error, kwargs.get("inputs"))

    @_guarded
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "retriever")
        attributes = {RUN_TYPE: "retriever", OPERATION: "retrieve"}
        _start(run_id, parent_run_id, "chain", name, {"query": query}, metadata, attributes)

    @_guarded
    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        run = _runs.pop(run_id)
        if run is None:
            return
        leave(run)
        texts = document_texts(documents)
        _runs.keep_documents(run, texts)
        record = run.record
        if record is not None:
            if record.extra is not None:
                record.extra["attributes"] = {**record.extra.get("attributes", {}), DOCUMENT_COUNT: len(texts)}
            finish_call(record, texts)

    @_guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        _fail(run_id, error)

    # --- tools -------------------------------------------------------------------------------------------

    @_guarded
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = _run_name(serialized, kwargs, "tool")
        arguments = {"input": inputs if inputs is not None else input_str}
        _start(run_id, parent_run_id, "tool", name, arguments, metadata, {RUN_TYPE: "tool"})

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        content = getattr(output, "content", None)  # a ToolMessage: its content is the tool's result
        _end(run_id, output if content is None else content)

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        _fail(run_id, error)

    # --- chat models and LLMs ----------------------------------------------------------------------------

    @_guarded
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        request = {"messages": chat_messages(messages[0] if messages else [])}
        _start_llm(run_id, parent_run_id, "chat", serialized, request, metadata, kwargs)

    @_guarded
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        request = {"prompt": prompts[0] if prompts else ""}
        _start_llm(run_id, parent_run_id, "text_completion", serialized, request, metadata, kwargs)

    @_guarded
    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        _first_chunk(run_id)

    @_guarded
    def on_stream_event(self, event: Any, *, run_id: UUID, **kwargs: Any) -> None:
        _first_chunk(run_id)

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = _runs.pop(run_id)
        if run is None:
            return
        leave(run)
        model = run.kwargs.get("model") if run.kwargs else None
        result = completion(response, model)
        if run.folded_into is not None:
            run.folded_into.inner_call = (run.kwargs or {}, result)
            return
        record = run.record
        if record is not None:
            if record.first_chunk_ns:
                record.stream_state = "completed"
            finish_call(record, result)

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = _runs.get(run_id)
        partial = kwargs.get("response")
        if run is not None and run.record is not None and partial is not None and getattr(partial, "generations", None):
            model = run.kwargs.get("model") if run.kwargs else None
            run.record.result = completion(partial, model)  # what a stream gave before it failed or stopped
        _fail(run_id, error)


def _start(
    run_id: UUID,
    parent_run_id: UUID | None,
    kind: str,
    name: str,
    arguments: dict[str, Any],
    metadata: Mapping[str, Any] | None,
    attributes: dict[str, Any],
    *,
    operation: str | None = None,
    fields: Mapping[str, Any] | None = None,
    current: bool = True,
) -> Run | None:
    """Put a run in flight with its span (None when llmpulse is off or another handler has the run)."""
    if state.pipeline is None or _runs.get(run_id) is not None:
        return None
    parent = _runs.get(parent_run_id) if parent_run_id is not None else None
    if parent is not None:
        outer = parent.outer
        if parent.record is None:  # under an unsampled run (or a folded one): not recorded either
            run = Run(None, parent, outer)
            _runs.add(run_id, run)
            return run
        parent_span: Any = parent.record
    else:  # a root run (or one whose parent llmpulse never saw): under the current llmpulse span
        parent_span = root_parent(current_span.get(), _running_run_id())
        outer = parent_span if isinstance(parent_span, SpanRecord) else None
    extra: dict[str, Any] = {"attributes": attributes}
    if fields:
        extra.update(fields)
    extra.update(metadata_fields(metadata))
    if kind == "llm":
        context = _runs.rag_context(parent, outer)
        if context:
            extra["rag_context"] = context
    record = start_call(_span_options(name, kind, operation), arguments, parent=parent_span, extra=extra)
    run = Run(record, parent, outer)
    run.kwargs = arguments
    if record is None and kind == "llm" and isinstance(parent_span, SpanRecord) and parent_span.inner_call is not None:
        run.folded_into = parent_span  # inside an @observe(kind="llm") span: this run completes it
    if not _runs.add(run_id, run):
        return None
    if current:
        enter(run_id, run)
    return run


def _start_llm(
    run_id: UUID,
    parent_run_id: UUID | None,
    operation: str,
    serialized: Mapping[str, Any] | None,
    request: dict[str, Any],
    metadata: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
) -> None:
    metadata = metadata or {}
    params = kwargs.get("invocation_params") or {}
    model = model_of(params, metadata)
    name = _run_name(serialized, kwargs, "llm")
    arguments = request_kwargs(model, params, metadata, **request)
    fields = {"provider": provider_of(model, metadata)}
    # Several prompts in one call (``generate([...])``, a legacy LLM's ``batch``) share one context: none of
    # their spans can be the current one, so a client call they make is recorded beside them, not folded.
    single = (kwargs.get("batch_size") or 1) <= 1
    attributes = {RUN_TYPE: "llm", RUN_NAME: name}
    _start(
        run_id,
        parent_run_id,
        "llm",
        name,
        arguments,
        metadata,
        attributes,
        operation=operation,
        fields=fields,
        current=single,
    )


def _running_run_id() -> Any:
    """The LangChain run whose code runs in this context (LangChain's child config names it), if any."""
    config = var_child_runnable_config.get()
    callbacks = config.get("callbacks") if config else None
    return getattr(callbacks, "parent_run_id", None)


def _first_chunk(run_id: UUID) -> None:
    run = _runs.get(run_id)
    record = run.record if run is not None else None
    if record is not None and not record.first_chunk_ns:
        record.first_chunk_ns = time_ns()
        record.chunks = []  # streamed; the chunks themselves come back whole with the run's end


def _end(run_id: UUID, result: Any, inputs: Any = None) -> None:
    run = _runs.pop(run_id)
    if run is None:
        return
    leave(run)
    record = run.record
    if record is None:
        return
    if inputs is not None:  # a streamed chain learns its input only as it ends
        record.kwargs = {"input": inputs}
    finish_call(record, result)


def _fail(run_id: UUID, error: BaseException, inputs: Any = None) -> None:
    run = _runs.pop(run_id)
    if run is None:
        return
    leave(run)
    record = run.record
    if record is None:
        return
    if inputs is not None:
        record.kwargs = {"input": inputs}
    if _is_early_stop(error):
        record.stream_state = "abandoned"
        end_span(record)
    else:
        fail_call(record, error)


# --- the global switch -----------------------------------------------------------------------------------


class _GlobalHandler:
    """The "context variable" handed to ``register_configure_hook``: LangChain only calls ``get()`` on it.

    A real ``ContextVar`` would hold the handler in one context only (threads start empty) and cannot be
    unregistered; this one answers the same everywhere and is switched off by ``uninstrument``.
    """

    def __init__(self) -> None:
        self.handler: LlmpulseCallbackHandler | None = None

    def get(self) -> LlmpulseCallbackHandler | None:
        return self.handler


_global = _GlobalHandler()
_hook_lock = threading.Lock()
_hook_registered = False


def instrument(**_options: Any) -> None:
    """Give every LangChain run the handler, as if passed in ``callbacks`` (and never twice)."""
    global _hook_registered
    with _hook_lock:
        if not _hook_registered:
            from langchain_core.tracers.context import register_configure_hook

            # handle_class: a run already given an LlmpulseCallbackHandler explicitly does not get this one too
            register_configure_hook(_global, True, LlmpulseCallbackHandler)  # type: ignore[arg-type]
            _hook_registered = True
        if _global.handler is None:
            _global.handler = LlmpulseCallbackHandler()


def uninstrument() -> None:
    """Runs started from now on get no handler unless passed one (runs in flight still end their spans)."""
    _global.handler = None


def stats() -> dict[str, int]:
    """Runs in flight, runs evicted unfinished, RAG documents over the per-chain cap, callback failures."""
    return {
        "runs_in_flight": len(_runs),
        "runs_evicted": _runs.evicted,
        "rag_documents_dropped": _runs.documents_dropped,
        "callback_errors": _runs.callback_errors,
    }


__all__ = ["LlmpulseCallbackHandler", "instrument", "stats", "uninstrument"]
