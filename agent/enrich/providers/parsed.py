"""The provider-neutral records parsing produces: what a request asked for and what a response returned."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ParsedRequest:
    """What an LLM call asked for, in semconv terms (``gen_ai.request.*`` and friends)."""

    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: list[str] | None = None
    seed: int | None = None
    choice_count: int | None = None
    stream: bool | None = None
    output_type: str | None = None
    input_messages: list[dict] | None = None
    system_instructions: list[dict] | None = None
    extra_params: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class ParsedResponse:
    """What an LLM call returned, in semconv terms (``gen_ai.response.*`` / ``gen_ai.usage.*``).

    ``input_tokens`` includes cached tokens (cache read and cache creation), as semconv requires;
    ``reasoning_output_tokens`` is included in ``output_tokens``.
    """

    provider: str | None = None
    operation: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    output_text: str | None = None
    output_messages: list[dict] | None = None
    token_logprobs: list[float] | None = None
