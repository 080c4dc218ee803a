"""Turn a finished call record (the SDK's ``SpanRecord``) into a :class:`FinishedSpan` with GenAI attributes.

Runs on the export thread: reads the request arguments and the returned value (or stream chunks),
applies content capture and redaction, prices the call, and names the span per the GenAI
conventions. Pure computation: no I/O, so it is unit-testable without a store.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmpulse.agent import semconv as sc
from llmpulse.agent.store import fastjson

from .capture import capture_content
from .prices import PriceTable
from .providers import (
    ParsedRequest,
    ParsedResponse,
    guess_provider,
    parse_request,
    parse_response,
    parse_stream,
)
from .redaction import Redaction

_STR_OR_CONTAINER = (str, dict, list, tuple)


@dataclass(slots=True)
class FinishedSpan:
    """A span ready for any exporter: typed attributes, hex-able ids, times in ns."""

    trace_id: int
    span_id: int
    parent_id: int
    name: str
    kind: str  # Client | Internal (collector spelling)
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: str = "Unset"  # Unset | Ok | Error
    status_message: str = ""
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    is_llm: bool = False


class CallRecord(Protocol):
    """What enrichment reads of a finished call: the SDK's ``SpanRecord`` (``agent.sdk.spans``)."""

    options: Any  # the decorator's ObserveOptions: name, kind, fields, signature, positional, ...
    args: tuple
    kwargs: dict
    trace_id: int
    span_id: int
    parent_id: int
    scoped: dict[str, Any] | None
    extra: dict[str, Any] | None
    result: Any
    chunks: list[Any] | None
    first_chunk_ns: int
    error: BaseException | None
    stream_state: str | None
    inner_call: tuple[dict, Any] | None  # (kwargs, result) of an instrumented client call folded into this span
    llm_child: bool  # an instrumented LLM call ran inside this span
    start_ns: int
    end_ns: int


@dataclass
class EnrichContext:
    """Settings and counters the enrichment needs; owned by the pipeline."""

    capture_content: bool = True
    redaction: Redaction = field(default_factory=Redaction)
    prices: PriceTable = field(default_factory=PriceTable.vendored)
    unknown_model_cost: int = 0
    streams_without_usage: int = 0  # streamed LLM calls whose provider reported no tokens: NULL tokens and cost


def _bind(record: CallRecord) -> dict[str, Any]:
    """All call arguments by name (positional ones included), for request parsing and capture."""
    opts = record.options
    if not record.args:
        return dict(record.kwargs)
    if opts.positional is not None and len(record.args) <= len(opts.positional):
        arguments = dict(zip(opts.positional, record.args, strict=False))  # fewer args than names: defaults
        arguments.update(record.kwargs)
        return arguments
    signature = opts.signature
    if signature is not None:
        try:
            bound = signature.bind_partial(*record.args, **record.kwargs)
            arguments = dict(bound.arguments)
            for name, param in signature.parameters.items():
                if param.kind is param.VAR_KEYWORD and name in arguments:
                    arguments.update(arguments.pop(name))
            return arguments
        except TypeError:
            pass
    return dict(record.kwargs)


def _fields(record: CallRecord) -> Mapping[str, Any]:
    """Decorator options, overridden by ``attributes(...)`` scope, overridden by ``update_current_span``.

    Read only: with no scope and no update it is the options' own precomputed mapping.
    """
    base = record.options.fields
    if not record.scoped and not record.extra:
        return base
    merged = dict(base)
    extra_attributes: dict[str, Any] = dict(base["attributes"])
    for layer in (record.scoped, record.extra):
        if layer:
            for key, value in layer.items():
                if key == "attributes":
                    extra_attributes.update(value or {})
                elif value is not None:
                    merged[key] = value
    merged["attributes"] = extra_attributes
    return merged


# Span fields written as string attributes when given.
_FIELD_ATTRIBUTES = {
    "user_id": sc.USER_ID,
    "session_id": sc.SESSION_ID,
    "conversation_id": sc.GEN_AI_CONVERSATION_ID,
    "prompt_template": sc.PROMPT_TEMPLATE,
    "prompt_version": sc.PROMPT_VERSION,
    "model_version": sc.MODEL_VERSION,
    "base_model": sc.MODEL_BASE,
    "quantization": sc.MODEL_QUANTIZATION,
}


def _is_llm(
    kind: str, fields: Mapping[str, Any], req: ParsedRequest | None, resp: ParsedResponse | None, llm_child: bool
) -> bool:
    if kind == "llm":
        return True
    if kind != "auto" or llm_child:  # the instrumented call inside is the LLM span; this one is a step
        return False
    if fields.get("model") or (req is not None and req.model and (req.input_messages or req.operation)):
        return True
    return resp is not None and bool(
        resp.response_model or resp.response_id or resp.input_tokens is not None or resp.output_tokens is not None
    )


def _with_inner_call(
    inner: tuple[dict, Any], req: ParsedRequest | None, resp: ParsedResponse | None
) -> tuple[ParsedRequest | None, ParsedResponse | None]:
    """Complete a span's request and response with the client call folded into it.

    The function's own arguments and return value win where they tell the model or the usage; a function
    that takes a question and returns the answer text gets the call's model, messages, tokens and cost.
    """
    kwargs, result = inner
    if req is None or not (req.model or req.input_messages):
        req = parse_request(kwargs)
    if resp is None or (resp.input_tokens is None and resp.output_tokens is None):
        inner_resp = parse_response(result) if result is not None else None
        if inner_resp is not None:
            resp = inner_resp
    return req, resp


def _exception_event(exc: BaseException, at_ns: int, redaction: Redaction) -> tuple[int, str, dict[str, Any]]:
    """The OTel exception event; message and stack trace (which repeats the message) are redacted."""
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (
        at_ns,
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": redaction(str(exc))[:4096],
            "exception.stacktrace": redaction(stack)[-16384:],
        },
    )


def enrich(record: CallRecord, ctx: EnrichContext) -> FinishedSpan:
    """Build the finished span. Raises only on bugs; the pipeline counts and drops such a record."""
    opts = record.options
    fields = _fields(record)
    arguments = _bind(record)
    capture = ctx.capture_content if opts.capture_content is None else opts.capture_content
    wants_llm = opts.kind in ("llm", "auto")
    req = parse_request(arguments) if wants_llm else None
    resp: ParsedResponse | None = None
    if wants_llm and (record.error is None or record.chunks or record.result is not None):
        # a stream's final snapshot (SDK stream helpers consumed around the proxy) beats its partial chunks
        resp = parse_response(record.result) if record.result is not None else None
        if resp is None and record.chunks is not None:
            resp = parse_stream(record.chunks)
    if record.inner_call is not None and wants_llm:
        req, resp = _with_inner_call(record.inner_call, req, resp)
    is_llm = _is_llm(opts.kind, fields, req, resp, record.llm_child)
    attrs: dict[str, Any] = {}
    events: list[tuple[int, str, dict[str, Any]]] = []

    if is_llm:
        name, kind = _llm_attributes(attrs, record, fields, req or ParsedRequest(), resp, ctx)
    elif opts.kind == "tool":
        attrs[sc.GEN_AI_OPERATION_NAME] = "execute_tool"
        attrs[sc.GEN_AI_TOOL_NAME] = opts.name
        name, kind = f"execute_tool {opts.name}", "Internal"
    else:
        name, kind = opts.name, "Internal"
    attrs[sc.SPAN_TYPE] = "llm" if is_llm else ("tool" if opts.kind == "tool" else "chain")
    if len(fields) > 1:  # more than "attributes"
        for key, attr in _FIELD_ATTRIBUTES.items():
            value = fields.get(key)
            if value is not None:
                attrs[attr] = ctx.redaction(str(value))
    if record.stream_state is not None:
        attrs["llmpulse.stream.state"] = record.stream_state

    if capture:
        capture_content(attrs, record, arguments, fields, req, resp, is_llm, ctx.redaction)

    for key, value in fields["attributes"].items():
        if value is not None:
            attrs[str(key)] = ctx.redaction.value(value) if type(value) in _STR_OR_CONTAINER else value

    status_code, status_message = "Unset", ""
    if record.error is not None:
        exc = record.error
        attrs[sc.ERROR_TYPE] = type(exc).__qualname__
        status_code, status_message = "Error", ctx.redaction(str(exc) or type(exc).__qualname__)[:4096]
        events.append(_exception_event(exc, record.end_ns, ctx.redaction))
    return FinishedSpan(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_id=record.parent_id,
        name=name,
        kind=kind,
        start_ns=record.start_ns,
        end_ns=record.end_ns,
        attributes=attrs,  # no None values: each is checked where it is set
        status_code=status_code,
        status_message=status_message,
        events=events,
        is_llm=is_llm,
    )


def _llm_attributes(
    attrs: dict[str, Any],
    record: CallRecord,
    fields: Mapping[str, Any],
    req: ParsedRequest,
    resp: ParsedResponse | None,
    ctx: EnrichContext,
) -> tuple[str, str]:
    opts = record.options
    resp = resp or ParsedResponse()
    model = fields.get("model") or req.model
    operation = opts.operation or req.operation or resp.operation or "chat"
    provider = fields.get("provider") or resp.provider or req.provider or guess_provider(model or resp.response_model)
    attrs[sc.GEN_AI_OPERATION_NAME] = operation
    if provider is not None:
        attrs[sc.GEN_AI_PROVIDER_NAME] = provider
    if model is not None:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    # One test per attribute, no intermediate tuples: this runs for every LLM call.
    if req.temperature is not None:
        attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = req.temperature
    if req.max_tokens is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = req.max_tokens
    if req.top_p is not None:
        attrs[sc.GEN_AI_REQUEST_TOP_P] = req.top_p
    if req.top_k is not None:
        attrs[sc.GEN_AI_REQUEST_TOP_K] = req.top_k
    if req.frequency_penalty is not None:
        attrs[sc.GEN_AI_REQUEST_FREQUENCY_PENALTY] = req.frequency_penalty
    if req.presence_penalty is not None:
        attrs[sc.GEN_AI_REQUEST_PRESENCE_PENALTY] = req.presence_penalty
    if req.stop_sequences is not None:
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = req.stop_sequences
    if req.seed is not None:
        attrs[sc.GEN_AI_REQUEST_SEED] = req.seed
    if req.output_type is not None:
        attrs[sc.GEN_AI_OUTPUT_TYPE] = req.output_type
    if resp.response_model is not None:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = resp.response_model
    if resp.response_id is not None:
        attrs[sc.GEN_AI_RESPONSE_ID] = resp.response_id
    if resp.finish_reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = resp.finish_reasons
    if resp.input_tokens is not None:
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = resp.input_tokens
    if resp.output_tokens is not None:
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = resp.output_tokens
    if resp.cache_read_input_tokens is not None:
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = resp.cache_read_input_tokens
    if resp.cache_creation_input_tokens is not None:
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = resp.cache_creation_input_tokens
    if resp.reasoning_output_tokens is not None:
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = resp.reasoning_output_tokens
    if req.choice_count is not None and req.choice_count != 1:
        attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = req.choice_count
    if req.extra_params:
        attrs[sc.REQUEST_PARAMS] = fastjson.dumps(dict(sorted(req.extra_params.items())))
    if record.chunks is not None:
        attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if record.first_chunk_ns:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (record.first_chunk_ns - record.start_ns) / 1e9
    elif req.stream:
        attrs[sc.GEN_AI_REQUEST_STREAM] = True
    if resp.input_tokens is None and resp.output_tokens is None:
        if record.chunks is not None:  # NULL, never 0 as if measured (OpenAI sends usage only when asked)
            ctx.streams_without_usage += 1
    else:
        # a dated response model ("gpt-4o-2024-08-06") is priced first; an unpriced one falls back to the request
        cost = ctx.prices.span_cost(
            (resp.response_model, model),
            resp.input_tokens,
            resp.output_tokens,
            resp.cache_read_input_tokens,
            resp.cache_creation_input_tokens,
        )
        if cost is None:
            ctx.unknown_model_cost += 1
        else:
            attrs[sc.COST_USD] = cost
    name = f"{operation} {model}" if model else operation
    return name, "Client"
