"""Request kwargs (OpenAI chat, completions, embeddings, Responses; Anthropic messages) to a ``ParsedRequest``.

One parser for every provider: the SDKs' keyword arguments overlap and the provider is not known before they
are read, so each step reads a few keys whichever API they belong to (the step table notes which).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .access import (
    _MISSING,
    _bool,
    _float,
    _get,
    _get_str,
    _given,
    _int,
    _is_scalar,
    _list,
    _str,
)
from .guess import guess_provider
from .parsed import ParsedRequest
from .parts import (
    _content_part,
    _content_parts,
    _flatten_text,
    _openai_tool_call,
    _text_part,
    _tool_call_part,
)

# --------------------------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------------------------

_ROLE_MAP = {"developer": "system"}

# Request params recorded in ``extra_params`` when scalar. Everything else is either a semconv attribute or content.
_EXTRA_SCALAR_PARAMS = (
    "reasoning_effort",
    "service_tier",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "store",
    "truncation",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
    "background",
    "max_tool_calls",
    "previous_response_id",
    "inference_geo",
    "speed",
)


def _output_type(fmt: Any) -> str | None:
    """Map response_format / text.format / output_config.format to semconv ``gen_ai.output.type``."""
    if fmt is None:
        return None
    if isinstance(fmt, type):  # pydantic model passed to .parse()
        return "json"
    if isinstance(fmt, str):
        kind = fmt
    else:
        kind = _get_str(fmt, "type")
        if kind is None:
            return None
    kind = kind.lower()
    if kind.startswith("json"):
        return "json"
    if kind == "text":
        return "text"
    return None


def _message_to_semconv(msg: Any) -> dict | None:
    """One OpenAI chat, Anthropic or Responses-API input message/item to a semconv ``ChatMessage``."""
    if isinstance(msg, str):
        return {"role": "user", "parts": [_text_part(msg)]}
    role = _get_str(msg, "role")
    item_type = _get_str(msg, "type")
    if role is None:
        if item_type in ("function_call", "custom_tool_call", "reasoning"):
            part = _content_part(msg)
            return {"role": "assistant", "parts": [part] if part else []}
        if item_type in ("function_call_output", "custom_tool_call_output"):
            part = _content_part(msg)
            return {"role": "tool", "parts": [part] if part else []}
        if item_type is not None:
            return None  # item_reference and other non-message items
        role = "user"
    role = _ROLE_MAP.get(role, role)
    content = _get(msg, "content")
    if role == "tool":
        response = _flatten_text(content)
        parts: list[dict] = [{"type": "tool_call_response", "id": _get_str(msg, "tool_call_id"), "response": response}]
    else:
        parts = _content_parts(content)
    for call in _list(_get(msg, "tool_calls")) or ():
        parts.append(_openai_tool_call(call))
    function_call = _get(msg, "function_call")
    if function_call is not None:
        parts.append(_tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
    out: dict[str, Any] = {"role": role, "parts": parts}
    name = _get_str(msg, "name")
    if name:
        out["name"] = name
    return out


def _messages_to_semconv(messages: Any) -> list[dict] | None:
    if type(messages) is list:
        items = messages
    elif isinstance(messages, str):
        return [{"role": "user", "parts": [_text_part(messages)]}]
    else:
        items = _list(messages)
        if items is None:
            return None
    out = []
    role_map = _ROLE_MAP
    for msg in items:
        # Fast path for the overwhelmingly common {"role": "...", "content": "..."}; same result as the general path.
        if type(msg) is dict and len(msg) == 2:
            role = msg.get("role")
            content = msg.get("content")
            if type(role) is str and type(content) is str:
                role = role_map.get(role, role)
                if role != "tool":
                    out.append({"role": role, "parts": [{"type": "text", "content": content}]})
                    continue
        converted = _message_to_semconv(msg)
        if converted is not None:
            out.append(converted)
    return out


def _instructions(value: Any) -> list[dict] | None:
    if isinstance(value, str):
        return [_text_part(value)] if value else None
    parts = _content_parts(value)
    return parts or None


def parse_request(kwargs: Mapping[str, object]) -> ParsedRequest:
    """Read the keyword arguments of an LLM SDK call (OpenAI chat/completions/responses, Anthropic messages).

    Args:
        kwargs: The keyword arguments passed to the SDK method.

    Returns:
        A ``ParsedRequest``; empty when ``kwargs`` is not a mapping. Never raises.
    """
    req = ParsedRequest()
    if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        return req
    try:
        extra_body = kwargs.get("extra_body")
        if type(extra_body) is dict and extra_body:
            # the SDKs send extra_body's keys as request fields: anthropic 2.x takes temperature/top_p/top_k only so
            kwargs = {**extra_body, **kwargs}
        _fill_request(req, kwargs)
    except Exception:  # defensive: a half-filled record beats an exception inside the user's app
        pass
    return req


# Request parsing is a fixed sequence of steps, each reading a few kwargs. A plain dict runs only the steps whose
# keys it holds (a step whose keys are all absent changes nothing), in the same order, so a step that raises leaves
# the same half-filled record either way. Other mappings run every step.

_PROVIDER_BY_MODEL: dict[str, str | None] = {}


def _provider_for(model: str | None) -> str | None:
    if type(model) is not str:
        return guess_provider(model)
    provider = _PROVIDER_BY_MODEL.get(model, _MISSING)
    if provider is _MISSING:
        provider = guess_provider(model)
        if len(_PROVIDER_BY_MODEL) < 4096:
            _PROVIDER_BY_MODEL[model] = provider
    return provider


def _req_input(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    messages = kw.get("messages")
    prompt = kw.get("prompt")
    inp = kw.get("input")
    if type(messages) is list or _given(messages):
        req.operation = "chat"
        req.input_messages = _messages_to_semconv(messages)
    elif _given(prompt):
        req.operation = "text_completion"
        if isinstance(prompt, str):
            req.input_messages = [{"role": "user", "parts": [_text_part(prompt)]}]
        elif _list(prompt) is not None and all(isinstance(p, str) for p in prompt):  # type: ignore[union-attr]
            req.input_messages = [{"role": "user", "parts": [_text_part(p) for p in prompt]}]  # type: ignore[union-attr]
    elif _given(inp):
        model = _str(kw.get("model"))
        is_embedding = (
            "embed" in (model or "").lower() or _given(kw.get("encoding_format")) or _given(kw.get("dimensions"))
        )
        if is_embedding:
            req.operation = "embeddings"
        else:
            req.operation = "chat"  # OpenAI Responses API
            req.input_messages = _messages_to_semconv(inp)


_MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample")


def _req_max_tokens(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    for key in _MAX_TOKENS_KEYS:
        value = _int(kw.get(key))
        if value is not None:
            req.max_tokens = value
            break


def _req_top_p(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.top_p = _float(kw.get("top_p"))


def _req_top_k(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.top_k = _float(kw.get("top_k"))


def _req_frequency_penalty(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.frequency_penalty = _float(kw.get("frequency_penalty"))


def _req_presence_penalty(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.presence_penalty = _float(kw.get("presence_penalty"))


def _req_stop(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    stop = kw.get("stop")
    if not _given(stop):
        stop = kw.get("stop_sequences")
    if isinstance(stop, str):
        req.stop_sequences = [stop]
    elif _list(stop) is not None:
        req.stop_sequences = [s for s in stop if isinstance(s, str)]  # type: ignore[union-attr]


def _req_seed(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.seed = _int(kw.get("seed"))


def _req_n(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.choice_count = _int(kw.get("n"))


def _req_stream(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.stream = _bool(kw.get("stream"))


def _req_output_type(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.output_type = (
        _output_type(kw.get("response_format"))
        or _output_type(_get(kw.get("text"), "format"))
        or _output_type(_get(kw.get("output_config"), "format"))
        or _output_type(kw.get("output_format"))
    )


def _req_system(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    system = kw.get("system")
    instructions = kw.get("instructions")
    if _given(system):
        req.system_instructions = _instructions(system)
    elif _given(instructions):
        req.system_instructions = _instructions(instructions)


def _req_extra_scalar(key: str) -> Any:
    def step(req: ParsedRequest, kw: Mapping[str, object]) -> None:
        value = kw.get(key)
        if _given(value) and _is_scalar(value):
            req.extra_params[key] = value

    return step


def _req_reasoning(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    reasoning = kw.get("reasoning")
    for key in ("effort", "summary"):
        value = _get(reasoning, key)
        if _is_scalar(value):
            req.extra_params[f"reasoning_{key}"] = value


def _req_verbosity(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    verbosity = _get(kw.get("text"), "verbosity")
    if _is_scalar(verbosity):
        req.extra_params["verbosity"] = verbosity


def _req_effort(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    effort = _get(kw.get("output_config"), "effort")
    if _is_scalar(effort):
        req.extra_params["effort"] = effort


def _req_thinking(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    thinking = kw.get("thinking")
    for key in ("type", "budget_tokens"):
        value = _get(thinking, key)
        if _is_scalar(value):
            req.extra_params[f"thinking_{key}"] = value


def _req_tool_choice(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    tool_choice = kw.get("tool_choice")
    if isinstance(tool_choice, str):
        req.extra_params["tool_choice"] = tool_choice
    elif _get_str(tool_choice, "type"):
        req.extra_params["tool_choice"] = _get(tool_choice, "type")


def _req_conversation(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    conversation = kw.get("conversation")
    conversation_id = _str(conversation) or _get_str(conversation, "id")
    if conversation_id:
        req.extra_params["conversation_id"] = conversation_id


# (keys the step reads, step), in the order the steps must run. The first three steps (model, input messages,
# temperature) are inlined in ``_fill_request``.
_REQUEST_STEPS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("model",), None),  # every API
    (("messages", "prompt", "input"), _req_input),  # chat and Anthropic; completions; embeddings or Responses
    (("temperature",), None),
    (_MAX_TOKENS_KEYS, _req_max_tokens),  # chat, Anthropic, Responses, legacy Anthropic completions
    (("top_p",), _req_top_p),
    (("top_k",), _req_top_k),  # Anthropic
    (("frequency_penalty",), _req_frequency_penalty),  # chat, completions
    (("presence_penalty",), _req_presence_penalty),  # chat, completions
    (("stop", "stop_sequences"), _req_stop),  # chat and completions; Anthropic
    (("seed",), _req_seed),
    (("n",), _req_n),  # chat, completions
    (("stream",), _req_stream),
    (("response_format", "text", "output_config", "output_format"), _req_output_type),  # chat; Responses; Anthropic
    (("system", "instructions"), _req_system),  # Anthropic; Responses
    *(((key,), _req_extra_scalar(key)) for key in _EXTRA_SCALAR_PARAMS),
    (("reasoning",), _req_reasoning),  # Responses
    (("text",), _req_verbosity),  # Responses
    (("output_config",), _req_effort),  # Anthropic
    (("thinking",), _req_thinking),  # Anthropic
    (("tool_choice",), _req_tool_choice),  # chat, Responses, Anthropic
    (("conversation",), _req_conversation),  # Responses
)
_STEP_BY_BIT: dict[int, Any] = {1 << i: step for i, (_, step) in enumerate(_REQUEST_STEPS)}
_ALL_STEPS = (1 << len(_REQUEST_STEPS)) - 1
_STEP_BITS_BY_KEY: dict[str, int] = {}
for _i, (_keys, _) in enumerate(_REQUEST_STEPS):
    for _key in _keys:
        _STEP_BITS_BY_KEY[_key] = _STEP_BITS_BY_KEY.get(_key, 0) | 1 << _i
del _i, _keys, _key


def _fill_request(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    mask = _ALL_STEPS
    if type(kw) is dict:
        bits = _STEP_BITS_BY_KEY.get
        try:
            mask = 0
            for key in kw:
                mask |= bits(key, 0)
        except Exception:  # odd keys (unhashable-by-subclass, mutated while iterating): run every step
            mask = _ALL_STEPS
    # The first three steps (the common model / messages / temperature), inlined.
    if mask & 1:
        model = kw.get("model")
        if type(model) is not str:
            model = _str(model)
        req.model = model
        req.provider = _provider_for(model)
    if mask & 2:
        messages = kw.get("messages")
        if type(messages) is list:  # what _req_input does for a list of messages
            req.operation = "chat"
            req.input_messages = _messages_to_semconv(messages)
        else:
            _req_input(req, kw)
    if mask & 4:
        temperature = kw.get("temperature")
        req.temperature = temperature if type(temperature) is float else _float(temperature)
    mask &= ~7
    steps = _STEP_BY_BIT
    while mask:
        bit = mask & -mask
        steps[bit](req, kw)
        mask ^= bit
