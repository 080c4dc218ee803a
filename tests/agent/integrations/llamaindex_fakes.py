"""LlamaIndex pieces for the integration tests: a small in-memory RAG index, LLMs that fail or report usage.

Everything is llama-index-core's own: ``MockEmbedding``, ``MockLLM``, ``VectorStoreIndex`` with its
default in-memory store. ``OpenAIBackedLLM`` is a ``CustomLLM`` that calls the real openai client (over
the recorded bodies of ``provider_fakes``) the way LlamaIndex's OpenAI integration does: the completion
as ``raw``, its token counts in ``additional_kwargs``, a stream read lazily inside the returned generator.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback

TEXTS = (
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "Madrid is the capital of Spain.",
)
ANSWER_WORDS = 6
ANSWER = " ".join(["text"] * ANSWER_WORDS)  # what MockLLM(max_tokens=6) says


def build_index() -> Any:
    return VectorStoreIndex.from_documents([Document(text=t) for t in TEXTS], embed_model=MockEmbedding(embed_dim=8))


def mock_llm() -> MockLLM:
    return MockLLM(max_tokens=ANSWER_WORDS)


class BackendDown(RuntimeError):
    """The error a failing LLM raises (a user exception that must pass through unchanged)."""


RAISED: list[BaseException] = []  # what FailingLLM raised, to check the app got that very object


class FailingLLM(MockLLM):
    """Raises on every completion, after LlamaIndex's callbacks have started the call."""

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        error = BackendDown("the model backend is unavailable")
        RAISED.append(error)
        raise error


class OpenAIBackedLLM(CustomLLM):
    """An LLM served by an ``openai.OpenAI`` client, shaped like ``llama_index.llms.openai.OpenAI``."""

    model: str = "gpt-4o-mini"
    client: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=False)

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        completion = self.client.chat.completions.create(model=self.model, messages=self._messages(prompt))
        usage = completion.usage
        return CompletionResponse(
            text=completion.choices[0].message.content or "",
            raw=completion,
            additional_kwargs={"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        )

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> Iterator[CompletionResponse]:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=self._messages(prompt),
                stream=True,
                stream_options={"include_usage": True},
            )
            text = ""
            for chunk in stream:
                delta = (chunk.choices[0].delta.content or "") if chunk.choices else ""
                text += delta
                yield CompletionResponse(text=text, delta=delta, raw=chunk)

        return gen()


class NoNetwork:
    """``socket.connect`` that refuses every address but the loopback: a test that reaches out fails loudly."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.refused: list[Any] = []

    def __call__(self, sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
            return self.original(sock, address)
        self.refused.append(address)
        raise OSError(f"test tried to reach {address!r}: LlamaIndex tests run offline")
