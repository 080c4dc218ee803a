"""Serve recorded OpenAI / Anthropic response bodies to the real client libraries, in process.

Why: tests of the parsers and of the ``@observe`` decorators should exercise what the real SDKs return (pydantic
models, ``Stream`` objects, SSE decoding) without a network. Both SDKs take an ``http_client``; openai 3.x and
anthropic 2.x are built on ``httpx2`` (anthropic rejects legacy ``httpx`` objects), so the clients here are
``DefaultHttpxClient`` / ``DefaultAsyncHttpxClient`` (the SDKs' documented injection point) over
``httpx2.MockTransport``, which works for both sync and async clients.

Usage::

    server = FixtureServer("openai_chat_completion.json")
    client = openai_client(server)
    completion = client.chat.completions.create(model="o4-mini", messages=[...])
    assert server.last_json["model"] == "o4-mini"

    client = anthropic_client("anthropic_stream.sse", async_=True)  # a fresh server per client
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "providers"

__all__ = [
    "FIXTURES_DIR",
    "FixtureServer",
    "RecordedRequest",
    "anthropic_client",
    "load_fixture",
    "load_json_fixture",
    "openai_client",
    "sse_events",
]

# Texts the recorded bodies carry, which a correct parser must read back.
OPENAI_CHAT_TEXT = "The capital of France is Paris."
OPENAI_STREAM_TEXT = (
    "The sky looks blue because air molecules scatter short blue wavelengths of sunlight far more than red ones."
)
RESPONSES_TEXT = "Traces light the dark\nspans whisper where time was lost\nlatency laid bare"
RESPONSES_STREAM_TEXT = "Bonjour ! Comment puis-je vous aider aujourd'hui ?"
ANTHROPIC_TEXT = (
    "Based on the policy document, refunds are available within 30 days of purchase for unused items "
    "with the original receipt."
)
ANTHROPIC_STREAM_TEXT = (
    "Observability means you can ask new questions about your system without shipping new code: traces, "
    "metrics and logs together explain *why* something happened."
)


def load_fixture(name: str) -> str:
    """Return the raw text of a recorded body in ``tests/fixtures/providers``."""
    return (FIXTURES_DIR / name).read_text(encoding="utf-8")


def load_json_fixture(name: str) -> Any:
    """Return a recorded JSON body, decoded (the dict shape of a response)."""
    return json.loads(load_fixture(name))


def sse_events(name: str) -> list[dict[str, Any]]:
    """Decode the ``data:`` payloads of a recorded SSE body (``[DONE]`` and non-JSON lines skipped)."""
    events = []
    for line in load_fixture(name).splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            continue
        events.append(json.loads(payload))
    return events


@dataclass
class RecordedRequest:
    """One request the fake server received."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The decoded JSON body (what the SDK sent)."""
        return json.loads(self.body) if self.body else None


class _EventChunkedStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """Yield an SSE body one event at a time, like a network would, to exercise the SDKs' SSE decoders."""

    def __init__(self, body: bytes) -> None:
        self._chunks = [c + b"\n\n" for c in body.split(b"\n\n") if c]

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class FixtureServer:
    """An ``httpx2`` handler that answers every request with recorded bodies and remembers the requests.

    Args:
        fixtures: File names under ``tests/fixtures/providers``, served in order; the last one repeats.
        status_code: HTTP status to answer with (e.g. 429 with ``openai_error_rate_limit.json``).
        headers: Extra response headers.
    """

    def __init__(self, *fixtures: str, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        if not fixtures:
            raise ValueError("FixtureServer needs at least one fixture name")
        self.fixtures = list(fixtures)
        self.status_code = status_code
        self.extra_headers = dict(headers or {})
        self.requests: list[RecordedRequest] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                url=str(request.url),
                path=request.url.path,
                headers=dict(request.headers),
                body=request.content,
            )
        )
        name = self.fixtures[min(len(self.requests), len(self.fixtures)) - 1]
        body = (FIXTURES_DIR / name).read_bytes()
        n = len(self.requests)
        if name.startswith("anthropic"):
            headers = {"request-id": f"req_011CTest{n:016d}", "anthropic-organization-id": "org-test"}
        else:
            headers = {
                "x-request-id": f"req_test{n:024d}",
                "openai-processing-ms": "321",
                "openai-version": "2020-10-01",
            }
        headers.update(self.extra_headers)
        if name.endswith(".sse"):
            headers["content-type"] = "text/event-stream; charset=utf-8"
            return httpx2.Response(self.status_code, headers=headers, stream=_EventChunkedStream(body))
        headers["content-type"] = "application/json"
        return httpx2.Response(self.status_code, headers=headers, content=body)

    def transport(self) -> httpx2.MockTransport:
        """An in-process transport for ``httpx2.Client`` / ``httpx2.AsyncClient``."""
        return httpx2.MockTransport(self)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (``AssertionError`` if none arrived)."""
        assert self.requests, "the fake server received no request"
        return self.requests[-1]

    @property
    def last_json(self) -> Any:
        """The JSON body of the most recent request."""
        return self.last_request.json


def _server(fixture: str | FixtureServer) -> FixtureServer:
    return fixture if isinstance(fixture, FixtureServer) else FixtureServer(fixture)


def openai_client(fixture: str | FixtureServer, *, async_: bool = False, **kwargs: Any) -> Any:
    """A real ``openai.OpenAI`` (or ``AsyncOpenAI``) whose HTTP calls are answered by ``fixture``.

    Args:
        fixture: A fixture file name, or a ``FixtureServer`` to inspect the requests afterwards.
        async_: Build ``AsyncOpenAI`` instead.
        **kwargs: Extra client constructor arguments.
    """
    import openai

    server = _server(fixture)
    options: dict[str, Any] = {"api_key": "sk-test", "base_url": "http://testserver/v1", "max_retries": 0}
    options.update(kwargs)
    if async_:
        return openai.AsyncOpenAI(http_client=openai.DefaultAsyncHttpxClient(transport=server.transport()), **options)
    return openai.OpenAI(http_client=openai.DefaultHttpxClient(transport=server.transport()), **options)


def anthropic_client(fixture: str | FixtureServer, *, async_: bool = False, **kwargs: Any) -> Any:
    """A real ``anthropic.Anthropic`` (or ``AsyncAnthropic``) whose HTTP calls are answered by ``fixture``.

    Args:
        fixture: A fixture file name, or a ``FixtureServer`` to inspect the requests afterwards.
        async_: Build ``AsyncAnthropic`` instead.
        **kwargs: Extra client constructor arguments.
    """
    import anthropic

    server = _server(fixture)
    options: dict[str, Any] = {"api_key": "sk-ant-test", "base_url": "http://testserver", "max_retries": 0}
    options.update(kwargs)
    if async_:
        return anthropic.AsyncAnthropic(
            http_client=anthropic.DefaultAsyncHttpxClient(transport=server.transport()), **options
        )
    return anthropic.Anthropic(http_client=anthropic.DefaultHttpxClient(transport=server.transport()), **options)
