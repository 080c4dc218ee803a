"""LangChain payloads to the OpenAI shapes the span parsers read: usage of each provider's kind, tool calls.

What the parsers read back is the check: the converted request and completion go through
``parse_request`` / ``parse_response`` as a span's would.
"""

from __future__ import annotations

import pytest
from llmpulse.agent.enrich.providers import parse_request, parse_response

pytest.importorskip("langchain_core", reason="the LangChain integration needs langchain-core (llmpulse[langchain])")

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from llmpulse.agent.integrations.langchain_convert import (
    chat_messages,
    completion,
    document_texts,
    metadata_fields,
    model_of,
    provider_of,
    request_kwargs,
)

CALL = {"name": "capital_of", "args": {"country": "France"}, "id": "call_1", "type": "tool_call"}


def test_a_chat_request_reads_back_with_roles_tool_calls_and_parameters() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("Capital of France?"),
        AIMessage("", tool_calls=[CALL]),
        ToolMessage("Paris", tool_call_id="call_1"),
    ]
    params = {"model_name": "claude-sonnet-4-5", "temperature": 0.1, "max_tokens": 64, "stop": ["\n"], "_type": "x"}
    metadata = {"ls_provider": "anthropic", "ls_model_name": "claude-sonnet-4-5", "ls_temperature": 0.9}
    model = model_of(params, metadata)
    kwargs = request_kwargs(model, params, metadata, messages=chat_messages(messages))
    assert "_type" not in kwargs and provider_of(model, metadata) == "anthropic"
    req = parse_request(kwargs)
    assert (req.model, req.temperature, req.max_tokens, req.stop_sequences) == ("claude-sonnet-4-5", 0.1, 64, ["\n"])
    assert [m["role"] for m in req.input_messages] == ["system", "user", "assistant", "tool"]
    assert req.input_messages[2]["parts"][-1]["name"] == "capital_of"
    assert req.input_messages[3]["parts"][0] == {"type": "tool_call_response", "id": "call_1", "response": "Paris"}


def test_langsmith_parameters_fill_what_the_invocation_parameters_lack() -> None:
    kwargs = request_kwargs("m", {}, {"ls_temperature": 0.7, "ls_max_tokens": 10, "ls_stop": ["END"]}, prompt="hi")
    assert kwargs == {"model": "m", "prompt": "hi", "temperature": 0.7, "max_tokens": 10, "stop": ["END"]}
    assert model_of({"model": "gpt-4o"}, {}) == "gpt-4o" and provider_of("gpt-4o", {}) == "openai"


def test_usage_metadata_keeps_cached_and_reasoning_tokens() -> None:
    usage = {
        "input_tokens": 1300,
        "output_tokens": 40,
        "total_tokens": 1340,
        "input_token_details": {"cache_read": 1000, "cache_creation": 200},
        "output_token_details": {"reasoning": 30},
    }
    message = AIMessage("Paris.", usage_metadata=usage, response_metadata={"model": "claude-sonnet-4-5-20250929"})
    result = completion(LLMResult(generations=[[ChatGeneration(message=message)]]), "claude-sonnet-4-5")
    parsed = parse_response(result)
    assert parsed.response_model == "claude-sonnet-4-5-20250929" and parsed.output_text == "Paris."
    assert (parsed.input_tokens, parsed.output_tokens) == (1300, 40), "input counts cache reads and writes, once"
    assert (parsed.cache_read_input_tokens, parsed.cache_creation_input_tokens) == (1000, 200)
    assert parsed.reasoning_output_tokens == 30 and parsed.finish_reasons == ["stop"]


@pytest.mark.parametrize(
    ("llm_output", "expected"),
    [
        ({"token_usage": {"prompt_tokens": 12, "completion_tokens": 3}, "model_name": "gpt-4o"}, (12, 3, None)),
        # Anthropic counts cache reads and writes apart from input_tokens
        (
            {"usage": {"input_tokens": 100, "output_tokens": 5, "cache_read_input_tokens": 1000}, "model": "claude"},
            (1100, 5, 1000),
        ),
    ],
)
def test_llm_output_usage_of_each_provider(llm_output: dict, expected: tuple) -> None:
    generation = ChatGeneration(message=AIMessage("ok"), generation_info={"finish_reason": "length"})
    parsed = parse_response(completion(LLMResult(generations=[[generation]], llm_output=llm_output), None))
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cache_read_input_tokens) == expected
    assert parsed.finish_reasons == ["length"] and parsed.response_model == llm_output.get("model_name", "claude")


def test_a_tool_call_answer_and_a_text_completion() -> None:
    chat = completion(LLMResult(generations=[[ChatGeneration(message=AIMessage("", tool_calls=[CALL]))]]), "m")
    parsed = parse_response(chat)
    assert parsed.finish_reasons == ["tool_calls"]
    assert parsed.output_messages[0]["parts"][-1]["name"] == "capital_of"
    text = completion(LLMResult(generations=[[Generation(text="Paris")]]), "davinci")
    parsed = parse_response(text)
    assert parsed.operation == "text_completion" and parsed.output_text == "Paris"
    assert parsed.input_tokens is None, "no usage reported: unknown, not zero"


def test_documents_and_metadata() -> None:
    from langchain_core.documents import Document

    assert document_texts([Document(page_content="a"), {"page_content": "b"}, "c"]) == ["a", "b", "c"]
    assert metadata_fields({"user_id": 7, "other": 1}) == {"user_id": "7"}
    assert metadata_fields({"ls_provider": "openai"}) == {} and metadata_fields(None) == {}
