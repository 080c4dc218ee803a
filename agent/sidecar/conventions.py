"""Spans of other GenAI conventions given the OpenTelemetry GenAI attributes ``llm_calls`` reads: pure.

Mapping happens at decode time. The receiver adds the semconv attribute *next to* the one the client
sent (never over an attribute the span already has), so ``otel_traces`` keeps everything the client
sent and ``llm_calls``' view, the dashboards and the analyzers need no change. Spans of none of these
conventions are not touched (one set lookup per span). The table attribute -> column is in the README;
the conventions:

* OpenInference (Arize Phoenix and its instrumentations): ``openinference.span.kind``, ``llm.*``,
  ``input.value``/``output.value``, ``retrieval.documents.*`` (the retrieval documents become the RAG
  context of the trace's LLM spans in ``join``, which sees the other spans of the trace).
* OpenLLMetry (Traceloop) before it moved to the semconv message attributes: ``gen_ai.prompt.N.*``,
  ``gen_ai.completion.N.*``, ``gen_ai.usage.prompt_tokens``, ``llm.usage.*``, ``llm.request.type``,
  ``traceloop.*``.
* OpenLIT's server-side timings: ``gen_ai.server.time_to_first_token`` (for streams) and its cost.
* Time to first token from the span events that mark it (OpenInference's first-token event, OpenLLMetry's
  first completion chunk) when no attribute gives it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmpulse.agent import semconv as sc
from llmpulse.agent.enrich.providers import ParsedRequest, parse_request, parse_response
from llmpulse.agent.store import fastjson

from .genai_content import content_value, dumps, has_content, input_messages, json_value, output_message

OI_KIND = "openinference.span.kind"
LLM_OPERATIONS = frozenset(("chat", "text_completion", "generate_content", "embeddings"))
"""The operations ``llm_calls``' view keeps: the spans that are LLM calls."""
RETRIEVAL = "retrieval"

# Keys whose presence says a span follows one of the conventions mapped here.
_OPENLLMETRY_KEYS = (
    "llm.request.type",
    "traceloop.span.kind",
    "traceloop.entity.input",
    "traceloop.prompt.key",
    "traceloop.association.properties.user_id",
    "traceloop.association.properties.session_id",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.role",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.prompt_tokens",
    "llm.usage.completion_tokens",
    "llm.usage.total_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.is_streaming",
    "llm.is_streaming",
)
_OPENLIT_KEYS = ("gen_ai.server.time_to_first_token", "gen_ai.usage.cost")
_TRIGGERS = frozenset((OI_KIND, *_OPENLLMETRY_KEYS, *_OPENLIT_KEYS))
# Span events whose time marks the first token of a stream.
FIRST_TOKEN_EVENTS = frozenset(
    ("First Token Stream Event", "gen_ai.content.completion.chunk", "llm.content.completion.chunk")
)

SpanEvents = Iterable[tuple[int, str]]  # (time in ns, name) of the span's events, read only when needed


def to_semconv(attrs: dict[str, Any], start_ns: int, events: SpanEvents = ()) -> None:
    """Add the GenAI semconv attributes for whichever of the conventions ``attrs`` follows (in place)."""
    if not _TRIGGERS.isdisjoint(attrs):
        if OI_KIND in attrs:
            _openinference(attrs)
        else:
            _openllmetry(attrs)
        _openlit(attrs)
    if events and sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in attrs and _is_stream(attrs):
        first = next((time for time, name in events if name in FIRST_TOKEN_EVENTS), None)
        if first is not None and first >= start_ns:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (first - start_ns) / 1e9


def _is_stream(attrs: Mapping[str, Any]) -> bool:
    stream = attrs.get(sc.GEN_AI_REQUEST_STREAM)
    return stream is True or stream == "true"


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless the span has it already or there is nothing to set."""
    if value is not None and value != "" and key not in attrs:
        attrs[key] = value


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _set_tokens(attrs: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> None:
    for source, target in pairs:
        _put(attrs, target, _count(attrs.get(source)))


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened list attributes (``prefix.N.field``) as a list of ``{field: value}``, in index order."""
    items: dict[int, dict[str, Any]] = {}
    start = len(prefix) + 1
    for key, value in attrs.items():
        if key.startswith(prefix) and key[len(prefix) : start] == ".":
            index, _, field = key[start:].partition(".")
            if index.isdigit() and field:
                items.setdefault(int(index), {})[field] = value
    return [items[i] for i in sorted(items)]


def _request_attrs(attrs: dict[str, Any], req: ParsedRequest) -> None:
    """What a parsed request gives (``parse_request`` of invocation parameters), as the SDK records it."""
    _put(attrs, sc.GEN_AI_REQUEST_MODEL, req.model)
    _put(attrs, sc.GEN_AI_REQUEST_TEMPERATURE, req.temperature)
    _put(attrs, sc.GEN_AI_REQUEST_MAX_TOKENS, req.max_tokens)
    _put(attrs, sc.GEN_AI_REQUEST_TOP_P, req.top_p)
    _put(attrs, sc.GEN_AI_REQUEST_TOP_K, req.top_k)
    _put(attrs, sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, req.frequency_penalty)
    _put(attrs, sc.GEN_AI_REQUEST_PRESENCE_PENALTY, req.presence_penalty)
    _put(attrs, sc.GEN_AI_REQUEST_STOP_SEQUENCES, req.stop_sequences)
    _put(attrs, sc.GEN_AI_REQUEST_SEED, req.seed)
    _put(attrs, sc.GEN_AI_OUTPUT_TYPE, req.output_type)
    if req.choice_count is not None and req.choice_count != 1:
        _put(attrs, sc.GEN_AI_REQUEST_CHOICE_COUNT, req.choice_count)
    if req.stream:
        _put(attrs, sc.GEN_AI_REQUEST_STREAM, True)
    if req.extra_params:
        _put(attrs, sc.REQUEST_PARAMS, fastjson.dumps(dict(sorted(req.extra_params.items()))))


# --- OpenInference -------------------------------------------------------------------------------------------

_OI_OPERATIONS = {"LLM": "chat", "EMBEDDING": "embeddings", "RETRIEVER": RETRIEVAL, "TOOL": "execute_tool"}
_OI_SPAN_TYPES = {"CHAIN": "chain", "AGENT": "chain", "TOOL": "tool", "RETRIEVER": "tool", "RERANKER": "tool"}
# OpenInference's llm.provider / llm.system values that differ from semconv's gen_ai.provider.name
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "google": "gcp.gen_ai",
    "vertexai": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
}
_OI_TOKENS = (
    ("llm.token_count.prompt", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("llm.token_count.completion", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("llm.token_count.prompt_details.cache_read", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    ("llm.token_count.prompt_details.cache_write", sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
    ("llm.token_count.completion_details.reasoning", sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
)


def _openinference(attrs: dict[str, Any]) -> None:
    kind = str(attrs.get(OI_KIND, "")).upper()
    _put(attrs, sc.SPAN_TYPE, "llm" if kind in ("LLM", "EMBEDDING") else _OI_SPAN_TYPES.get(kind))
    if kind not in ("LLM", "EMBEDDING"):
        if kind in _OI_OPERATIONS:
            _put(attrs, sc.GEN_AI_OPERATION_NAME, _OI_OPERATIONS[kind])
        _put(attrs, sc.GEN_AI_TOOL_NAME, attrs.get("tool.name") if kind == "TOOL" else None)
        _put(attrs, "llmpulse.input", attrs.get("input.value"))
        _put(attrs, "llmpulse.output", attrs.get("output.value"))
        return
    provider = attrs.get("llm.provider") or attrs.get("llm.system")
    if isinstance(provider, str) and provider:
        _put(attrs, sc.GEN_AI_PROVIDER_NAME, _PROVIDERS.get(provider.lower(), provider.lower()))
    _set_tokens(attrs, _OI_TOKENS)
    _put(attrs, sc.PROMPT_TEMPLATE, attrs.get("llm.prompt_template.template"))
    _put(attrs, sc.PROMPT_VERSION, attrs.get("llm.prompt_template.version"))
    if kind == "EMBEDDING":
        _put(attrs, sc.GEN_AI_OPERATION_NAME, "embeddings")
        _put(attrs, sc.GEN_AI_REQUEST_MODEL, attrs.get("embedding.model_name"))
        return
    params = json_value(attrs.get("llm.invocation_parameters"))
    req = parse_request(params) if isinstance(params, Mapping) else ParsedRequest()
    _put(attrs, sc.GEN_AI_REQUEST_MODEL, attrs.get("llm.request.model_name"))
    _request_attrs(attrs, req)
    _put(attrs, sc.GEN_AI_RESPONSE_MODEL, attrs.get("llm.response.model_name") or attrs.get("llm.model_name"))
    finish = attrs.get("llm.finish_reason")
    _oi_content(attrs, finish)
    if isinstance(finish, str) and finish:
        _put(attrs, sc.GEN_AI_RESPONSE_FINISH_REASONS, [finish])
    prompts = json_value(attrs.get("llm.prompts"))
    operation = "text_completion" if prompts and not attrs.get("llm.input_messages.0.message.role") else "chat"
    _put(attrs, sc.GEN_AI_OPERATION_NAME, operation)


def _oi_message(fields: Mapping[str, Any]) -> dict[str, Any]:
    """One flattened OpenInference message (``message.role``, ``message.content``, ...) as an OpenAI message."""
    message: dict[str, Any] = {"role": fields.get("message.role") or "user"}
    parts = _indexed(fields, "message.contents")
    if parts:
        message["content"] = [_oi_part(part) for part in parts]
    else:
        message["content"] = content_value(fields.get("message.content")) or None  # None: a tool call alone
    calls = _indexed(fields, "message.tool_calls")
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("tool_call.id"),
                "type": "function",
                "function": {
                    "name": call.get("tool_call.function.name"),
                    "arguments": call.get("tool_call.function.arguments"),
                },
            }
            for call in calls
        ]
    if fields.get("message.function_call_name"):
        message["function_call"] = {
            "name": fields["message.function_call_name"],
            "arguments": fields.get("message.function_call_arguments_json"),
        }
    for source, target in (("message.tool_call_id", "tool_call_id"), ("message.name", "name")):
        if fields.get(source):
            message[target] = fields[source]
    return message


def _oi_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("message_content.type")
    if kind == "image" and part.get("message_content.image.image.url"):
        return {"type": "image_url", "image_url": {"url": part["message_content.image.image.url"]}}
    return {"type": "text", "text": str(part.get("message_content.text") or "")}


def _oi_content(attrs: dict[str, Any], finish: Any) -> None:
    inputs = _indexed(attrs, "llm.input_messages")
    if inputs:
        converted = input_messages([_oi_message(m) for m in inputs])
        if converted:
            _put(attrs, sc.GEN_AI_INPUT_MESSAGES, dumps(converted))
    outputs = _indexed(attrs, "llm.output_messages")
    if outputs:
        messages = [output_message(_oi_message({"message.role": "assistant", **m}), finish) for m in outputs]
        _put(attrs, sc.GEN_AI_OUTPUT_MESSAGES, dumps(messages))
    if has_content(attrs):
        return
    # No messages: the raw input and output. JSON in an OpenAI shape is read as such, anything else as text.
    value, mime = attrs.get("input.value"), attrs.get("input.mime_type")
    request = json_value(value) if mime == "application/json" else None
    if isinstance(request, Mapping) and (req := parse_request(request)).input_messages:
        _put(attrs, sc.GEN_AI_INPUT_MESSAGES, dumps(req.input_messages))
    elif isinstance(value, str):
        _put(attrs, "llmpulse.input.text", value)
    value, mime = attrs.get("output.value"), attrs.get("output.mime_type")
    response = json_value(value) if mime == "application/json" else None
    parsed = parse_response(dict(response)) if isinstance(response, Mapping) else None
    if parsed is not None and parsed.output_messages:
        _put(attrs, sc.GEN_AI_OUTPUT_MESSAGES, dumps(parsed.output_messages))
    elif isinstance(value, str):
        _put(attrs, sc.OUTPUT_TEXT, value)


# --- OpenLLMetry (Traceloop) -----------------------------------------------------------------------------------

_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
_TRACELOOP_SPAN_TYPES = {"workflow": "chain", "task": "chain", "agent": "chain", "tool": "tool"}
_OPENLLMETRY_TOKENS = (
    ("gen_ai.usage.prompt_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("gen_ai.usage.completion_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("llm.usage.prompt_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("llm.usage.completion_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("gen_ai.usage.cache_read_input_tokens", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    ("gen_ai.usage.cache_creation_input_tokens", sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
    ("gen_ai.usage.reasoning_tokens", sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
)
_OPENLLMETRY_RENAMES = (
    ("llm.frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("llm.presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("llm.top_k", sc.GEN_AI_REQUEST_TOP_K),
    ("llm.user", sc.USER_ID),
    ("traceloop.association.properties.user_id", sc.USER_ID),
    ("traceloop.association.properties.session_id", sc.SESSION_ID),
    ("traceloop.prompt.key", sc.PROMPT_TEMPLATE),
    ("traceloop.prompt.version", sc.PROMPT_VERSION),
)
_TOOL_CALL = re.compile(r"^tool_calls\.(\d+)\.(\w+)$")


def _openllmetry(attrs: dict[str, Any]) -> None:
    span_kind = attrs.get("traceloop.span.kind")
    if span_kind in _TRACELOOP_SPAN_TYPES:
        _put(attrs, sc.SPAN_TYPE, _TRACELOOP_SPAN_TYPES[span_kind])
        _put(attrs, "llmpulse.input", attrs.get("traceloop.entity.input"))
        _put(attrs, "llmpulse.output", attrs.get("traceloop.entity.output"))
    for source, target in _OPENLLMETRY_RENAMES:
        _put(attrs, target, attrs.get(source))
    _set_tokens(attrs, _OPENLLMETRY_TOKENS)
    streaming = attrs.get("gen_ai.is_streaming", attrs.get("llm.is_streaming"))
    if streaming is True or streaming == "true":
        _put(attrs, sc.GEN_AI_REQUEST_STREAM, True)
    stop = json_value(attrs.get("llm.chat.stop_sequences"))
    _put(attrs, sc.GEN_AI_REQUEST_STOP_SEQUENCES, stop if isinstance(stop, list) else None)
    prompts = _indexed(attrs, "gen_ai.prompt")
    completions = _indexed(attrs, "gen_ai.completion")
    operation = _REQUEST_TYPES.get(str(attrs.get("llm.request.type", "")))
    if operation is None and (prompts or completions):
        operation = "chat"
    _put(attrs, sc.GEN_AI_OPERATION_NAME, operation)
    system = attrs.get(sc.GEN_AI_SYSTEM)
    if isinstance(system, str) and system and operation is not None:
        _put(attrs, sc.GEN_AI_PROVIDER_NAME, _PROVIDERS.get(system.lower(), system.lower()))
    if prompts:
        converted = input_messages([_openllmetry_message(m, "user") for m in prompts])
        if converted:
            _put(attrs, sc.GEN_AI_INPUT_MESSAGES, dumps(converted))
    if completions:
        messages = [output_message(_openllmetry_message(m, "assistant"), m.get("finish_reason")) for m in completions]
        _put(attrs, sc.GEN_AI_OUTPUT_MESSAGES, dumps(messages))
        reasons = [m["finish_reason"] for m in completions if isinstance(m.get("finish_reason"), str)]
        _put(attrs, sc.GEN_AI_RESPONSE_FINISH_REASONS, reasons or None)


def _openllmetry_message(fields: Mapping[str, Any], role: str) -> dict[str, Any]:
    """``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` fields as an OpenAI message."""
    content = content_value(fields.get("content")) or None  # None: a tool call alone
    message: dict[str, Any] = {"role": fields.get("role") or role, "content": content}
    calls: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        match = _TOOL_CALL.match(key)
        if match:
            calls.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": call.get("name"), "arguments": call.get("arguments")},
            }
            for _, call in sorted(calls.items())
        ]
    if fields.get("tool_call_id"):
        message["tool_call_id"] = fields["tool_call_id"]
    return message


# --- OpenLIT ---------------------------------------------------------------------------------------------------


def _openlit(attrs: dict[str, Any]) -> None:
    """OpenLIT's time to first token, for streams (on a plain call it is the whole call's duration)."""
    ttft = attrs.get("gen_ai.server.time_to_first_token")
    if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) and ttft >= 0 and _is_stream(attrs):
        _put(attrs, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, float(ttft))


def reported_cost(attrs: Mapping[str, Any]) -> float | None:
    """The cost the instrumentation itself computed (OpenLIT, OpenInference): used only for a model the
    price table does not know, and only when positive (OpenLIT reports 0 when its own table lacks it)."""
    for key in ("gen_ai.usage.cost", "llm.cost.total"):
        value = attrs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e9:
            return float(value)
    return None


# --- retrieval -------------------------------------------------------------------------------------------------


def retrieval_documents(attrs: Mapping[str, Any]) -> list[str]:
    """The texts a retrieval span returned: OpenInference's ``retrieval.documents.N.document.content`` or
    semconv's ``gen_ai.retrieval.documents`` (JSON: strings or objects with ``content``)."""
    documents = [
        str(d["document.content"]) for d in _indexed(attrs, "retrieval.documents") if d.get("document.content")
    ]
    if documents:
        return documents
    value = json_value(attrs.get("gen_ai.retrieval.documents"))
    texts = []
    for item in value if isinstance(value, list) else ():
        text = item.get("content") if isinstance(item, Mapping) else item
        if isinstance(text, str) and text:
            texts.append(text)
    return texts
