"""LlamaIndex responses in the OpenAI shapes the parsers read: usage of each provider's raw response.

An LLM span's result is an OpenAI chat-completion dict; these check what the SDK's own parser then reads
from it (``parse_response``), so tokens mean the same as for a client call: cached tokens inside the
input tokens (OpenAI) or added to them (Anthropic), and no usage at all when the response has none.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from llmpulse.agent.enrich.providers import parse_response
from llmpulse.agent.integrations import llamaindex_shapes as shapes


def _parsed(raw: Any = None, additional: dict[str, Any] | None = None, text: str = "Paris.") -> Any:
    response = SimpleNamespace(text=text, raw=raw, additional_kwargs=additional or {}, message=None)
    return parse_response(shapes.llm_result(response, "some-model"))


def test_no_usage_means_no_tokens_not_zero() -> None:
    parsed = _parsed()
    assert parsed.output_text == "Paris." and parsed.input_tokens is None and parsed.output_tokens is None
    assert parsed.response_model == "some-model" and parsed.finish_reasons == ["stop"]


def test_openai_chat_usage_passes_as_is() -> None:
    raw = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"finish_reason": "length"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 64}},
    }
    parsed = _parsed(raw)
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cache_read_input_tokens) == (100, 7, 64)
    assert parsed.response_model == "gpt-4o-2024-08-06" and parsed.response_id == "chatcmpl-1"
    assert parsed.finish_reasons == ["length"]


def test_anthropic_usage_adds_the_cache_to_the_input() -> None:
    usage = SimpleNamespace(
        input_tokens=10, output_tokens=5, cache_read_input_tokens=200, cache_creation_input_tokens=30
    )
    parsed = _parsed(SimpleNamespace(usage=usage, stop_reason="end_turn", model="claude-sonnet-4-5", id="msg_1"))
    assert (parsed.input_tokens, parsed.output_tokens) == (240, 5)
    assert (parsed.cache_read_input_tokens, parsed.cache_creation_input_tokens) == (200, 30)
    assert parsed.finish_reasons == ["end_turn"]


def test_openai_responses_usage_keeps_the_cache_inside_the_input() -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 20,
        "input_tokens_details": {"cached_tokens": 40},
        "output_tokens_details": {"reasoning_tokens": 12},
    }
    parsed = _parsed({"usage": usage})
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cache_read_input_tokens) == (50, 20, 40)
    assert parsed.reasoning_output_tokens == 12


def test_llamaindex_token_counts_are_read_when_raw_has_none() -> None:
    parsed = _parsed(raw="not a response", additional={"prompt_tokens": 12, "completion_tokens": 3})
    assert (parsed.input_tokens, parsed.output_tokens) == (12, 3)


def test_a_stream_output_replaces_the_responses_own_text() -> None:
    response = SimpleNamespace(text="lagging", raw=None, additional_kwargs={}, message=None)
    assert parse_response(shapes.llm_result(response, None, "what the reader got")).output_text == "what the reader got"
    assert shapes.llm_result(None, None) is None


def test_the_provider_comes_from_the_integration_package_then_the_model() -> None:
    def llm_from(module: str) -> Any:
        return type("LLM", (), {"__module__": module})()

    assert shapes.provider_name(llm_from("llama_index.llms.anthropic.base"), "claude-x") == "anthropic"
    assert shapes.provider_name(llm_from("llama_index.llms.bedrock_converse.base"), None) == "aws.bedrock"
    assert shapes.provider_name(llm_from("llama_index.llms.ollama.base"), "llama3") == "ollama"
    assert shapes.provider_name(llm_from("my_app.models"), "gpt-4o-mini") == "openai"
    assert shapes.provider_name(llm_from("llama_index.core.llms.mock"), None) == shapes.UNKNOWN_PROVIDER


def test_a_request_keeps_known_parameters_only() -> None:
    llm = SimpleNamespace(model="gpt-4o", temperature=0.2, max_tokens=None, api_key="sk-secret", top_p=0.9)
    bound = SimpleNamespace(arguments={"prompt": "Hi", "formatted": False, "kwargs": {"temperature": 0.7, "seed": 3}})
    kwargs = shapes.llm_request("text_completion", llm, bound, stream=True)
    assert kwargs == {"model": "gpt-4o", "prompt": "Hi", "temperature": 0.7, "top_p": 0.9, "seed": 3, "stream": True}
