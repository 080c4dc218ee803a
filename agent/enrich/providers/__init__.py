"""Parse LLM request kwargs, responses and streams into provider-neutral records.

Why: the agent records OpenTelemetry GenAI attributes for calls made through the OpenAI and Anthropic SDKs (or
anything that returns the same shapes, including plain dicts and strings) without importing those SDKs. Parsing
runs on the export thread after the call returned, so it must be cheap (attribute access, no ``model_dump()``)
and must never raise: odd input yields ``None`` or a partially filled record.

One module per provider API, each with its response parsing and its own stream state: ``openai_chat``
(chat completions; its stream state also reads legacy completion chunks), ``openai_completions``,
``openai_embeddings``, ``openai_responses`` and ``anthropic``. ``response`` and ``stream`` pick the module
from the shape of what the call returned. Requests are read by one parser, ``request``: the SDKs' keyword
arguments overlap (``model``, ``messages``, ``max_tokens``, ``stop``...) and the provider is not known
before they are read, so it runs one fixed sequence of steps, each noting the API it serves. ``guess``
holds the one rule that names a provider from a model name. Message shapes follow the GenAI semantic conventions'
JSON schemas for ``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions``
(semantic-conventions v1.41.0).
"""

from .guess import guess_provider
from .parsed import ParsedRequest, ParsedResponse
from .parts import map_finish_reason
from .request import parse_request
from .response import parse_response
from .stream import parse_stream

__all__ = [
    "ParsedRequest",
    "ParsedResponse",
    "guess_provider",
    "map_finish_reason",
    "parse_request",
    "parse_response",
    "parse_stream",
]
