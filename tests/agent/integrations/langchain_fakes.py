"""LangChain pieces for the tests: langchain-core's own fake chat model and in-memory vector store, set up as a
provider's would be (a model name, usage, a streamed last chunk with usage), and a RAG chain built from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

MODEL = "gpt-4o-mini"
DOCUMENTS = {
    "France": "Paris is the capital of France.",
    "Germany": "Berlin is the capital of Germany.",
    "Italy": "Rome is the capital of Italy.",
    "Spain": "Madrid is the capital of Spain.",
}
USAGE = {
    "input_tokens": 1200,
    "output_tokens": 50,
    "total_tokens": 1250,
    "input_token_details": {"cache_read": 1000},
    "output_token_details": {"reasoning": 20},
}
# gpt-4o-mini in the vendored price table: $0.15 / 0.075 (cache reads) / 0.6 per million tokens
COST = (200 * 0.15 + 1000 * 0.075 + 50 * 0.6) / 1e6


def answer(text: str, **extra: Any) -> AIMessage:
    """An AIMessage as a provider integration returns it: model name, finish reason and usage."""
    finish = "tool_calls" if extra.get("tool_calls") else "stop"
    return AIMessage(
        content=text,
        usage_metadata=USAGE,
        response_metadata={"model_name": f"{MODEL}-2024-07-18", "finish_reason": finish, "id": "chatcmpl-fake"},
        **extra,
    )


class FakeChat(GenericFakeChatModel):
    """``GenericFakeChatModel`` that names its model and provider, and streams its usage in a last chunk."""

    model_name: str = MODEL
    temperature: float = 0.2

    @property
    def _llm_type(self) -> str:
        return "fake-openai-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(ls_provider="openai", ls_model_name=self.model_name, ls_temperature=self.temperature)
        return params

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        message = next(self.messages)
        for word in re.split(r"(\s)", message.content):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word, id=message.id))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )


class FailingChat(FakeChat):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the provider is overloaded")


def vector_retriever(k: int = 2) -> Any:
    """An ``InMemoryVectorStore`` retriever over the country documents (deterministic fake embeddings)."""
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents([Document(page_content=text, metadata={"country": c}) for c, text in DOCUMENTS.items()])
    return store.as_retriever(search_kwargs={"k": k})


class ByCountry(BaseRetriever):
    """Finds the document of the country a question names (the fake embeddings find by hash, not meaning)."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Document]:
        return [Document(page_content=text) for country, text in DOCUMENTS.items() if country in query]


def rag_chain(model: Any, retrieve: Any = None) -> Runnable:
    """prompt | retriever-filled context | model | parser: the shape of LangChain's RAG tutorial."""
    retrieve = ByCountry() if retrieve is None else retrieve
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from this context only:\n{context}"), ("human", "{question}")]
    )
    context = retrieve | RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs), name="format_docs")
    return {"context": context, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()
