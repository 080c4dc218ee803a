"""``instrument("openai")``: every call of the openai client's chat completions, completions, embeddings
and Responses APIs, sync and async, recorded as one LLM span.

The class methods are patched, so every client, made before or after instrumenting, is covered:

* ``create`` of chat completions, completions, embeddings and Responses; a ``stream=True`` call returns
  the SDK's stream wrapped so that the span ends with it (exhausted, failed, closed, left in a ``with``
  block, or dropped unfinished), with the output seen so far;
* ``parse`` of chat completions and Responses (structured outputs), which post their request directly;
* ``stream`` of chat completions and Responses: the stream managers. The span is the manager's: it
  starts at ``.stream(...)``, the request the manager sends on entering its block (through ``create``) is
  folded into it, and it ends when the managed stream is exhausted or the block is left (an exception
  raised in the block fails it). One call, one span;
* ``with_raw_response`` (it calls the patched methods): the app gets the SDK's raw response back unchanged
  and the span the parsed response, or the stream the app's ``parse()`` returns (``wrappers``).

``stream_usage=True`` adds ``stream_options={"include_usage": True}`` to streaming chat and completion
requests that did not set it, so streams report their tokens; a stream that reports none is recorded
with NULL tokens and cost and counted in ``stats().streams_without_usage``.
Not covered: ``with_streaming_response`` (its body is read by the app after the call: the span has the
request but no usage), the Assistants/Realtime APIs, and a ``with_raw_response`` resource taken from a
client before ``instrument()`` (the SDK binds it once per client).
"""

from __future__ import annotations

import importlib
from typing import Any

from llmpulse.agent.sdk.calls import call_options

from .patching import patch, unpatch
from .wrappers import async_method, sync_method

LIBRARY = "openai"
# (module, sync class, async class, operation, span name, methods)
TARGETS = (
    (
        "openai.resources.chat.completions",
        "Completions",
        "AsyncCompletions",
        "chat",
        "openai.chat.completions",
        ("create", "parse"),
    ),
    (
        "openai.resources.completions",
        "Completions",
        "AsyncCompletions",
        "text_completion",
        "openai.completions",
        ("create",),
    ),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "embeddings", "openai.embeddings", ("create",)),
    ("openai.resources.responses", "Responses", "AsyncResponses", "chat", "openai.responses", ("create", "parse")),
)
# The stream managers: ``stream`` is a plain (sync) method on both clients; the async one returns an async manager.
MANAGERS = (
    ("openai.resources.chat.completions", "Completions", "AsyncCompletions", "chat", "openai.chat.completions"),
    ("openai.resources.responses", "Responses", "AsyncResponses", "chat", "openai.responses"),
)
_STREAM_USAGE_OPERATIONS = ("chat", "text_completion")


def _unset(value: Any) -> bool:
    """None or the SDK's ``omit`` / ``NOT_GIVEN`` (the stream helpers pass ``stream_options=omit``)."""
    return value is None or type(value).__name__ in ("Omit", "NotGiven")


def with_stream_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Ask a streaming request for its usage, unless the app said what it wants."""
    if kwargs.get("stream") is True and _unset(kwargs.get("stream_options")):
        kwargs["stream_options"] = {"include_usage": True}  # the wrapper's own **kwargs dict
    return kwargs


def instrument(*, stream_usage: bool = False, **_options: Any) -> None:
    for module_name, sync_name, async_name, operation, span_name, methods in TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an older openai without this API
            continue
        prepare = with_stream_usage if stream_usage and operation in _STREAM_USAGE_OPERATIONS else None
        for method in methods:
            options = call_options(f"{span_name}.{method}", provider="openai", operation=operation)
            for class_name, make in ((sync_name, sync_method), (async_name, async_method)):
                owner = getattr(module, class_name, None)
                if owner is not None:
                    patch(LIBRARY, owner, method, make(options, prepare if method == "create" else None))
    for module_name, sync_name, async_name, operation, span_name in MANAGERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        options = call_options(f"{span_name}.stream", provider="openai", operation=operation)
        for class_name in (sync_name, async_name):
            owner = getattr(module, class_name, None)
            if owner is not None:
                patch(LIBRARY, owner, "stream", sync_method(options))


def uninstrument() -> None:
    unpatch(LIBRARY)
