"""Prompt and response content in the GenAI conventions' message shape, from whatever carried it: pure.

Other instrumentations send content as OpenAI-shaped messages (OpenInference's flattened attributes,
OpenLLMetry's ``gen_ai.prompt.N.*``), as per-message events (``gen_ai.user.message``, ``gen_ai.choice``,
semconv 1.28 to 1.36), as one ``gen_ai.client.inference.operation.details`` event (semconv 1.37 on), or as
the span events of semconv 1.27 (``gen_ai.content.prompt``). Each becomes the semconv attributes
``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` (JSON text), which
``llm_calls``' view reads. The OpenAI-shaped messages go through the SDK's own request parser, so a message
reads the same whichever way it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from llmpulse.agent import semconv as sc
from llmpulse.agent.enrich.providers import map_finish_reason, parse_request
from llmpulse.agent.store import fastjson

CONTENT_KEYS = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, "llmpulse.input.text", sc.OUTPUT_TEXT)
"""Attributes that hold a call's prompt or response: a span with none of them has no content."""

# Per-message events (semconv 1.28-1.36): the role each one's message has when its body names none.
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_PROMPT_SPAN_EVENT = "gen_ai.content.prompt"  # semconv 1.27 span events, attribute gen_ai.prompt / gen_ai.completion
_COMPLETION_SPAN_EVENT = "gen_ai.content.completion"
CONTENT_EVENTS = frozenset((*_MESSAGE_EVENTS, CHOICE_EVENT, DETAILS_EVENT, _PROMPT_SPAN_EVENT, _COMPLETION_SPAN_EVENT))
OUTPUT_EVENTS = frozenset((CHOICE_EVENT, DETAILS_EVENT, _COMPLETION_SPAN_EVENT))
"""Events that carry a response: once one has arrived for a waiting span, its content is complete."""
_DETAILS_CONTENT = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS)


def has_content(attrs: Mapping[str, Any]) -> bool:
    return any(attrs.get(key) for key in CONTENT_KEYS)


def json_value(value: Any) -> Any:
    """A value that may be JSON text (an attribute or body read back from the store, a serialized list) decoded."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def content_value(value: Any) -> Any:
    """Message content: text, or a list of typed parts that an instrumentation serialized to JSON text.

    Text that only looks like JSON (a prompt starting with ``[``) stays text.
    """
    decoded = json_value(value)
    if isinstance(decoded, list) and decoded and all(isinstance(p, Mapping) and "type" in p for p in decoded):
        return decoded
    return value


def input_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages (``role``, ``content``, ``tool_calls``, ``tool_call_id``) as semconv ``ChatMessage``s."""
    return parse_request({"messages": messages}).input_messages or []


def output_message(message: Mapping[str, Any] | None, finish_reason: Any) -> dict[str, Any]:
    """One choice (an OpenAI-shaped message and its finish reason) as a semconv ``OutputMessage``."""
    message = dict(message or {})
    role = message.get("role") if isinstance(message.get("role"), str) else "assistant"
    converted = input_messages([{**message, "role": role}]) if message else []
    parts = converted[0]["parts"] if converted else []
    reason = finish_reason if isinstance(finish_reason, str) and finish_reason else None
    return {"role": role, "parts": parts, "finish_reason": map_finish_reason(reason) if reason else "stop"}


def dumps(value: Any) -> str:
    return fastjson.dumps(value)


# --- events ----------------------------------------------------------------------------------------------------


def content_from_events(events: Iterable[tuple[str, Mapping[str, Any], Any]]) -> tuple[dict[str, str], dict[str, Any]]:
    """The semconv content attributes that ``(name, attributes, body)`` events carry, and the other
    ``gen_ai.*`` attributes of an operation-details event (for a span that lacks them).

    Input messages keep the events' order; choices are ordered by their ``index``.
    """
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    content: dict[str, str] = {}
    extra: dict[str, Any] = {}
    reasons: list[str] = []  # of gen_ai.choice events: the span's gen_ai.response.finish_reasons when it has none
    for name, attrs, body in events:
        if name in _MESSAGE_EVENTS:
            inputs.append(_event_message(name, json_value(body)))
        elif name == CHOICE_EVENT:
            choice = json_value(body)
            choice = choice if isinstance(choice, Mapping) else {"message": {"content": choice}}
            index = choice.get("index")
            message = json_value(choice.get("message"))
            if not isinstance(message, Mapping):
                message = {"content": message} if message is not None else {}
            position = index if isinstance(index, int) and not isinstance(index, bool) else len(choices)
            choices.append((position, output_message(message, choice.get("finish_reason"))))
            if isinstance(choice.get("finish_reason"), str):
                reasons.append(choice["finish_reason"])
        elif name == DETAILS_EVENT:
            for key, value in attrs.items():
                if key in _DETAILS_CONTENT:
                    value = json_value(value)
                    if value:
                        content[key] = value if isinstance(value, str) else dumps(value)
                elif key.startswith("gen_ai."):
                    extra[key] = value
        elif name == _PROMPT_SPAN_EVENT:
            prompt = json_value(attrs.get("gen_ai.prompt"))
            if isinstance(prompt, list):
                inputs.extend(m for m in prompt if isinstance(m, Mapping))
            elif isinstance(prompt, str) and prompt:
                inputs.append({"role": "user", "content": prompt})
        elif name == _COMPLETION_SPAN_EVENT:
            completion = json_value(attrs.get("gen_ai.completion"))
            if isinstance(completion, str) and completion:
                completion = [{"role": "assistant", "content": completion}]
            for message in completion if isinstance(completion, list) else ():
                if isinstance(message, Mapping):
                    choices.append((len(choices), output_message(message, message.get("finish_reason"))))
    if inputs and sc.GEN_AI_INPUT_MESSAGES not in content:
        converted = input_messages(inputs)
        if converted:
            content[sc.GEN_AI_INPUT_MESSAGES] = dumps(converted)
    if reasons:
        extra.setdefault(sc.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
    if choices and sc.GEN_AI_OUTPUT_MESSAGES not in content:
        content[sc.GEN_AI_OUTPUT_MESSAGES] = dumps([message for _, message in sorted(choices, key=lambda c: c[0])])
    return content, extra


def _event_message(name: str, body: Any) -> dict[str, Any]:
    """A per-message event's body (``content``, ``tool_calls``, ``id``; ``role`` optional) as an OpenAI message."""
    message = dict(body) if isinstance(body, Mapping) else {"content": body if body is not None else ""}
    if not isinstance(message.get("role"), str):
        message["role"] = _MESSAGE_EVENTS[name]
    if message["role"] == "tool" and "id" in message and "tool_call_id" not in message:
        message["tool_call_id"] = message.pop("id")
    message["content"] = content_value(message.get("content")) or None  # None: a tool call alone
    return message
