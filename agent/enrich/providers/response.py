"""A completed response of any supported provider to a ``ParsedResponse``: the dispatcher over the shapes."""

from __future__ import annotations

from typing import Any

from .access import (
    _SCALARS,
    _get,
    _get_str,
    _list,
)
from .anthropic import parse_message
from .openai_chat import parse_chat, parse_chat_dict
from .openai_completions import parse_completion
from .openai_embeddings import parse_embeddings
from .openai_responses import parse_responses
from .parsed import ParsedResponse

# --------------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------------


def parse_response(obj: object) -> ParsedResponse | None:
    """Parse a completed LLM response.

    Handles OpenAI ``ChatCompletion``, Responses-API ``Response``, legacy ``Completion``, embeddings responses,
    Anthropic ``Message`` (SDK objects or dicts of the same shape) and plain strings.

    Args:
        obj: What the SDK call (or the user's function) returned.

    Returns:
        A ``ParsedResponse``, or ``None`` when the object is not recognised. Never raises.
    """
    try:
        return _parse_response(obj)
    except Exception:
        return None


def _parse_response(obj: Any) -> ParsedResponse | None:
    if type(obj) is dict:
        object_type = obj.get("object")
        if type(object_type) is str and object_type == "chat.completion":
            return parse_chat_dict(obj) or parse_chat(obj)
    elif obj is None:
        return None
    if isinstance(obj, str):
        return ParsedResponse(output_text=obj)
    if isinstance(obj, _SCALARS):
        return None
    object_type = _get_str(obj, "object")
    kind = _get_str(obj, "type")
    if object_type == "chat.completion":
        return parse_chat(obj)
    if object_type == "text_completion":
        return parse_completion(obj)
    if object_type == "response":
        return parse_responses(obj)
    if kind == "message":
        return parse_message(obj)
    if object_type == "list" and _get(obj, "data") is not None:
        return parse_embeddings(obj)
    if kind is not None and kind.startswith("response.") and _get(obj, "response") is not None:
        return parse_responses(_get(obj, "response"))  # a Responses terminal stream event
    if kind == "message_stop" and _get(obj, "message") is not None:
        return parse_message(_get(obj, "message"))
    # Shape sniffing for dicts / objects lacking the discriminator field.
    choices = _list(_get(obj, "choices"))
    if choices:
        first = choices[0]
        if _get(first, "message") is not None:
            return parse_chat(obj)
        if _get(first, "text") is not None:
            return parse_completion(obj)
        return None
    if _list(_get(obj, "output")) is not None and (_get(obj, "status") is not None or _get(obj, "usage") is not None):
        return parse_responses(obj)
    if _list(_get(obj, "content")) is not None and _get(obj, "role") == "assistant":
        return parse_message(obj)
    return None
