"""``instrument("anthropic")``: every call of the anthropic client's Messages API, sync and async, as one LLM span.

Patched on the classes (every client is covered, made before or after instrumenting):

* ``messages.create``: a ``stream=True`` call returns the SDK's stream wrapped so that the span ends with it
  (exhausted, failed, closed, left in a ``with`` block, or dropped unfinished), with the output and the
  usage seen so far (``message_start`` already reports the input tokens);
* ``messages.stream(...)``: the stream manager. The span starts at the call, the request is sent when
  the block is entered, and the span ends when the managed stream is exhausted or the block is left (an
  exception raised in the block fails it); text read through ``text_stream`` or ``get_final_message()``
  is taken from the SDK's accumulated message;
* ``messages.parse`` (structured outputs) and ``with_raw_response`` (``wrappers``).

Usage as Anthropic reports it: ``input_tokens`` excludes the cache; ``gen_ai.usage.input_tokens`` is
recorded as input + cache read + cache creation (the OTel GenAI convention), and the cost charges each
part at its own price. Not covered: the ``beta`` namespace, batches, ``count_tokens``.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmpulse.agent.sdk.calls import call_options

from .patching import patch, unpatch
from .wrappers import async_method, sync_method

LIBRARY = "anthropic"
MODULE = "anthropic.resources.messages"


def instrument(**_options: Any) -> None:
    module = importlib.import_module(MODULE)
    for method in ("create", "parse"):
        options = call_options(f"anthropic.messages.{method}", provider="anthropic", operation="chat")
        patch(LIBRARY, module.Messages, method, sync_method(options))
        patch(LIBRARY, module.AsyncMessages, method, async_method(options))
    # ``stream`` is a plain method on both clients: it returns a (sync or async) manager without sending anything.
    options = call_options("anthropic.messages.stream", provider="anthropic", operation="chat")
    for owner in (module.Messages, module.AsyncMessages):
        patch(LIBRARY, owner, "stream", sync_method(options))


def uninstrument() -> None:
    unpatch(LIBRARY)
