"""Replay recorded VCR cassettes (``tests/fixtures/cassettes``) to the real openai / anthropic clients, in process.

The cassettes are real HTTP interactions with the OpenAI and Anthropic APIs recorded by
opentelemetry-python-contrib (Apache-2.0; sources in ``tests/fixtures/cassettes/SOURCES.md``). A
:class:`Cassette` is an ``httpx2`` handler serving a file's interactions in order, one per request, with
the recorded status, headers and body. Stored bodies are decoded text, so ``content-length``,
``content-encoding`` and ``transfer-encoding`` are dropped; an SSE body is sent one event at a time, as a
network would, so the SDKs' decoders (and a consumer that stops early) see a real stream.

Usage::

    cassette = Cassette("openai/test_chat_completion_with_content.yaml")
    client = openai_client(cassette)
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    assert cassette.requests[0].json["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import yaml

CASSETTES = Path(__file__).resolve().parents[2] / "fixtures" / "cassettes"
_DROPPED_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})


@dataclass
class SeenRequest:
    """A request the cassette answered."""

    method: str
    path: str
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _EventStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """An SSE body, one event per chunk."""

    def __init__(self, body: bytes) -> None:
        self._chunks = [part + b"\n\n" for part in body.split(b"\n\n") if part.strip()]

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _headers(recorded: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for name, values in recorded.items():
        if name.lower() in _DROPPED_HEADERS:
            continue
        for value in values if isinstance(values, list) else [values]:
            out.append((name, str(value)))
    return out


class Cassette:
    """Serves the interactions of one cassette file in order.

    Args:
        name: Path under ``tests/fixtures/cassettes`` (``"anthropic/test_sync_messages_stream.yaml"``).
        rewrite: Changes a response body before it is served (``body -> body``), for a test that needs a
            value the recording does not carry (say which, and why, where it is used).
    """

    def __init__(self, name: str, *, rewrite: Callable[[str], str] | None = None) -> None:
        document = yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))
        self.name = name
        self.interactions: list[dict[str, Any]] = document["interactions"]
        self.rewrite = rewrite
        self.requests: list[SeenRequest] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.requests)
        self.requests.append(SeenRequest(request.method, request.url.path, request.content))
        if index >= len(self.interactions):
            raise AssertionError(f"{self.name}: request {index + 1} but the cassette holds {len(self.interactions)}")
        response = self.interactions[index]["response"]
        body = response["body"]["string"]
        if self.rewrite is not None:
            body = self.rewrite(body)
        headers = _headers(response["headers"])
        status = response["status"]["code"]
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if content_type.startswith("text/event-stream"):
            return httpx2.Response(status, headers=headers, stream=_EventStream(body.encode()))
        return httpx2.Response(status, headers=headers, content=body.encode())

    @property
    def bodies(self) -> list[str]:
        """The recorded response bodies, in order."""
        return [i["response"]["body"]["string"] for i in self.interactions]

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self)


def openai_client(cassette: Cassette, *, async_: bool = False) -> Any:
    """A real ``openai.OpenAI`` (``AsyncOpenAI``) whose requests the cassette answers."""
    import openai

    options: dict[str, Any] = {
        "api_key": "test_openai_api_key",
        "base_url": "https://api.openai.com/v1",
        "max_retries": 0,
    }
    if async_:
        return openai.AsyncOpenAI(http_client=openai.DefaultAsyncHttpxClient(transport=cassette.transport()), **options)
    return openai.OpenAI(http_client=openai.DefaultHttpxClient(transport=cassette.transport()), **options)


def anthropic_client(cassette: Cassette, *, async_: bool = False) -> Any:
    """A real ``anthropic.Anthropic`` (``AsyncAnthropic``) whose requests the cassette answers."""
    import anthropic

    options: dict[str, Any] = {
        "api_key": "test_anthropic_api_key",
        "base_url": "https://api.anthropic.com",
        "max_retries": 0,
    }
    if async_:
        return anthropic.AsyncAnthropic(
            http_client=anthropic.DefaultAsyncHttpxClient(transport=cassette.transport()), **options
        )
    return anthropic.Anthropic(http_client=anthropic.DefaultHttpxClient(transport=cassette.transport()), **options)
