"""Captured GenAI-semconv messages as OpenAI chat messages: text, tools, images, what cannot be expressed."""

from __future__ import annotations

import json

import pytest
from llmpulse.analyzers.feedback import messages as msg


def _dump(value) -> str:
    return json.dumps(value)


def test_text_system_and_history():
    stored = [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
        {"role": "assistant", "parts": [{"type": "reasoning", "content": "..."}, {"type": "text", "content": "Hello"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Part one. "}, {"type": "text", "content": "Two."}]},
    ]
    assert msg.conversation(_dump(stored)) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Two."}]},
    ]


def test_system_instructions_sent_apart_come_first_unless_a_system_message_is_there():
    user = _dump([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}])
    system = _dump([{"type": "text", "content": "Reply in French."}])
    assert msg.conversation(user, system)[0] == {"role": "system", "content": "Reply in French."}
    both = _dump([{"role": "system", "parts": [{"type": "text", "content": "Own."}]}])
    assert msg.conversation(both, system) == [{"role": "system", "content": "Own."}]


def test_tool_calls_and_results():
    stored = [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Lima?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Lima"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": {"temp": 19}}]},
    ]
    converted = msg.conversation(_dump(stored))
    assert converted[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Lima"}'}}
        ],
    }
    assert converted[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 19}'}
    assert msg.has_tool_calls(converted)


def test_images_by_url_or_inline_data():
    stored = [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is this?"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
                {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "content": "AAAA"},
            ],
        }
    ]
    content = msg.conversation(_dump(stored))[0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert content[2] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"type": "blob", "modality": "audio", "content": "AAAA"}, "audio content"),
        ({"type": "file", "modality": "image", "file_id": "file-1"}, "an image given as file"),
        ({"type": "server_tool_call", "name": "web"}, "a 'server_tool_call' part"),
    ],
)
def test_what_openai_chat_format_cannot_hold_is_refused_by_name(part, message):
    with pytest.raises(msg.Unsupported, match=message):
        msg.conversation(_dump([{"role": "user", "parts": [part]}]))


def test_the_answer_is_the_first_output_choice_else_the_response_text():
    outputs = [
        {"role": "assistant", "parts": [{"type": "text", "content": "First"}], "finish_reason": "stop"},
        {"role": "assistant", "parts": [{"type": "text", "content": "Second"}], "finish_reason": "stop"},
    ]
    assert msg.answer(_dump(outputs)) == {"role": "assistant", "content": "First"}
    assert msg.answer("", "plain text") == {"role": "assistant", "content": "plain text"}
    assert msg.answer("not json", "") is None
