"""OpenLIT as an OTLP client of ``llmpulse agent``: run by ``test_openlit`` in OpenLIT's own environment.

OpenLIT pins openai < 3, which the project's own environment is past, so this script runs with the
interpreter of an environment that has the ``interop-openlit`` extra (see .ci/run). It makes the same calls
as the in-process interop clients (calls.py), a plain and a streamed chat completion, through a real openai
client whose HTTP calls are answered in process (``httpx.MockTransport``, openai 2 is built on httpx) with
the recorded bodies under tests/fixtures/providers, and exports traces and logs to the endpoint given.

Usage: python openlit_client.py OTLP_ENDPOINT SERVICE_NAME PRICING_JSON
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import openai
import openlit
from opentelemetry import _logs, trace

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "providers"


class _Events(httpx.SyncByteStream):
    """An SSE body one event at a time, as a network would deliver it."""

    def __init__(self, body: bytes) -> None:
        self._chunks = [c + b"\n\n" for c in body.split(b"\n\n") if c]

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self._chunks


def _answer(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        body = (FIXTURES / "openai_chat_stream.sse").read_bytes()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Events(body))
    body = (FIXTURES / "openai_chat_completion.json").read_bytes()
    return httpx.Response(200, headers={"content-type": "application/json"}, content=body)


def main(endpoint: str, service: str, pricing_json: str) -> None:
    # A local (empty) price list: OpenLIT would otherwise fetch its own from GitHub.
    openlit.init(
        otlp_endpoint=endpoint,
        application_name=service,
        disable_batch=True,
        disable_metrics=True,
        pricing_json=pricing_json,
    )
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://testserver/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(_answer)),
    )
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        temperature=0.3,
        max_tokens=50,
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    _logs.get_logger_provider().force_flush()  # type: ignore[attr-defined]
    print(json.dumps({"openlit": version("openlit"), "openai": version("openai")}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
