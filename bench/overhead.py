"""Hot-path cost of @observe against a plain OpenTelemetry span with the same attributes.

Three variants of one call returning an OpenAI-shaped chat completion, measured in one run:

1. the plain function;
2. the function inside a plain OpenTelemetry SDK span (BatchSpanProcessor, discarding exporter) carrying
   the same GenAI attributes @observe records: request attributes at start, response attributes
   (model, id, tokens, finish reasons) read from the result and set before the span ends;
3. the function under ``@observe`` with the real pipeline writing to an embedded chDB store, content
   capture on (the default): the arguments are snapshotted at call time (nested lists and dicts copied,
   so a message changed after the call is stored as it was) and redacted on the export thread.

Prints microseconds per call (median of several rounds) and the ratio of added overheads
(observe - plain) / (otel - plain). Target: <= 0.5. ``--history N`` passes a chat history of N messages
(every other one with a list of content parts) instead of one message, to show what the snapshot costs
as the history grows. A fourth line, a plain OTel span that also records the messages as JSON attributes
(what content capture costs any instrumentation), gives a second ratio for long histories, where the
plain span records no content at all and the first ratio compares unlike work.

A fifth line runs the same function as a client method wrapped exactly as ``instrument("openai")`` wraps
the SDK's methods (``agent.integrations.wrappers``): the instrumented hot path against the decorator's, on
identical work (each of the two is followed by a flush, so neither runs beside the other's export).

Then the same question through the real ``openai`` client over an in-process ``httpx`` MockTransport, in
three variants measured in the same rounds (order turning each round; each variant's time includes the
flush that exports its spans): the client alone, the call inside an ``@observe`` function, and the call
recorded by ``instrument("openai")`` with no decorator; wall time and the process's CPU time. Target for
both comparisons: the instrumented call adds at most the decorator's added cost + 10 %. Each ratio is
also given round by round (median and range): on a shared machine the client call (~1 ms) varies between
rounds by more than either recording costs, so read the range before the median.

    python bench/overhead.py [--calls 20000] [--rounds 7] [--history 1] [--client-calls 2000 (0: skip)]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

from llmpulse.agent.sdk.decorator import _copy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from llmpulse import agent

RESPONSE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def history(n: int) -> list:
    """n chat messages; odd ones carry content parts, as multimodal and tool messages do."""
    out: list = []
    for i in range(n):
        if i % 2:
            out.append({"role": "assistant", "content": [{"type": "text", "text": f"Answer number {i}."}]})
        else:
            out.append({"role": "user", "content": f"Question number {i}: what is the capital of France?"})
    return out


def chat(model: str, messages: list, temperature: float = 0.2, max_tokens: int = 64) -> dict:
    return RESPONSE


class _Discard(SpanExporter):
    def export(self, spans: Sequence) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def otel_variant(messages: list, *, content: bool = False) -> tuple[Callable[[], dict], TracerProvider]:
    """A plain OTel span; with ``content`` it also records the messages as the GenAI conventions' opt-in
    ``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON attributes, serialized at call time as
    instrumentations that capture content do."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    tracer = provider.get_tracer("bench")

    def call() -> dict:
        model, temperature, max_tokens = "gpt-4o-mini", 0.2, 64
        with tracer.start_as_current_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.request.temperature": temperature,
                "gen_ai.request.max_tokens": max_tokens,
            },
        ) as span:
            if content:
                span.set_attribute("gen_ai.input.messages", json.dumps(messages))
            result = chat(model, messages, temperature, max_tokens)
            if content:
                span.set_attribute("gen_ai.output.messages", json.dumps([c["message"] for c in result["choices"]]))
            usage = result["usage"]
            span.set_attributes(
                {
                    "gen_ai.response.model": result["model"],
                    "gen_ai.response.id": result["id"],
                    "gen_ai.response.finish_reasons": [c["finish_reason"] for c in result["choices"]],
                    "gen_ai.usage.input_tokens": usage["prompt_tokens"],
                    "gen_ai.usage.output_tokens": usage["completion_tokens"],
                }
            )
            return result

    return call, provider


class _Resource:
    """A client resource whose ``create`` returns ``RESPONSE``: patched as ``instrument("openai")`` patches."""

    def create(self, **kwargs: object) -> dict:
        return RESPONSE


def instrumented_method() -> _Resource:
    """``_Resource`` with ``create`` wrapped by the very wrapper ``instrument("openai")`` puts on the SDK's methods."""
    from llmpulse.agent.integrations.patching import patch
    from llmpulse.agent.integrations.wrappers import sync_method
    from llmpulse.agent.sdk.calls import call_options

    options = call_options("bench.chat.completions.create", provider="openai", operation="chat")
    patch("bench", _Resource, "create", sync_method(options))
    return _Resource()


def openai_client() -> object:
    """A real ``openai.OpenAI`` whose requests an in-process transport answers with ``RESPONSE``."""
    import httpx2
    import openai

    body = json.dumps(RESPONSE).encode()
    headers = {"content-type": "application/json", "x-request-id": "req_bench"}

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=body)

    transport = httpx2.MockTransport(answer)
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://bench/v1",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=transport),
    )


def client_rounds(messages: list, calls: int, rounds: int) -> dict[str, list[float]]:
    """us/call of the client alone, under ``@observe`` and under ``instrument("openai")``: wall time, and the
    process's CPU time (all its threads: the app's, the export thread, the engine's), which a shared
    machine's load disturbs far less than wall time.

    Each variant's time includes exporting the spans it made: the flush that follows its calls is timed
    with them (otherwise one variant's export work, done by the export thread while the next variant runs,
    would be charged to that one). The order of the three turns from round to round.
    """
    client = openai_client()

    def plain() -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64)

    @agent.observe
    def ask(model: str, messages: list, **params: object) -> object:
        return client.chat.completions.create(model=model, messages=messages, **params)

    def with_observe() -> object:
        return ask(model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64)

    def run(name: str) -> tuple[float, float]:
        fn = with_observe if name == "client_observe" else plain
        if name == "client_auto":
            agent.instrument("openai")  # the same call as "client", now patched
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            agent.flush(120)
            return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6
        finally:
            if name == "client_auto":
                agent.uninstrument("openai")

    names = ["client", "client_observe", "client_auto"]
    results: dict[str, list[float]] = {}
    for name in names:  # warm-up
        run(name)
    for round_ in range(rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            wall, cpu = run(name)
            results.setdefault(name, []).append(wall)
            results.setdefault(f"{name}_cpu", []).append(cpu)
    return results


def paired(results: dict[str, list[float]], variant: str, reference: str, base: str) -> str:
    """The median, and the range, of the ratio of added costs taken round by round: the two variants of one
    round ran minutes apart at most, so a machine that slows down between rounds moves both."""
    ratios = sorted(
        (v - b) / (r - b) for v, r, b in zip(results[variant], results[reference], results[base], strict=True) if r > b
    )
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]"


def time_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--history", type=int, default=1, help="messages per call (default 1)")
    parser.add_argument(
        "--client-calls", type=int, default=2_000, help="calls per round through the openai client (0: skip it)"
    )
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1 or args.history < 1 or args.client_calls < 0:
        parser.error("--calls, --rounds and --history must be at least 1, --client-calls at least 0")
    messages = MESSAGES if args.history == 1 else history(args.history)

    store = tempfile.mkdtemp(prefix="llmpulse-bench-")
    agent.configure(f"chdb://{store}/store", spool_dir=f"{store}/spool", service_name="bench", capture_content=True)
    observed = agent.observe(chat)
    patched = instrumented_method()

    def plain() -> dict:
        return chat("gpt-4o-mini", messages, temperature=0.2, max_tokens=64)

    def with_patched() -> dict:
        return patched.create(model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64)

    def with_observe() -> dict:
        return observed("gpt-4o-mini", messages, temperature=0.2, max_tokens=64)

    with_otel, provider = otel_variant(messages)
    with_otel_content, provider_content = otel_variant(messages, content=True)
    variants = {
        "plain": plain,
        "otel": with_otel,
        "otel_content": with_otel_content,
        "observe": with_observe,
        "patched": with_patched,
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for variant in results:  # warm-up
        time_per_call(variants[variant], 2_000)
    agent.flush(120)
    for round_ in range(args.rounds):
        results["plain"].append(time_per_call(plain, args.calls))
        results["otel"].append(time_per_call(with_otel, args.calls))
        results["otel_content"].append(time_per_call(with_otel_content, args.calls))
        # one flush after each recording variant: the next one must not run beside its export (turn by turn first)
        for name in ("observe", "patched") if round_ % 2 == 0 else ("patched", "observe"):
            results[name].append(time_per_call(variants[name], args.calls))
            agent.flush(120)  # keep rounds independent: the store has everything before the next variant
        provider.force_flush()
        provider_content.force_flush()
    median = {k: statistics.median(v) for k, v in results.items()}
    client = client_rounds(messages, args.client_calls, args.rounds) if args.client_calls else {}
    median.update({k: statistics.median(v) for k, v in client.items()})
    kwargs = {"temperature": 0.2, "max_tokens": 64}
    snapshot_us = statistics.median(
        time_per_call(lambda: (_copy(["gpt-4o-mini", messages], 0), _copy(kwargs, 0)), args.calls)
        for _ in range(args.rounds)
    )
    stats = agent.stats()
    agent.shutdown(60)
    provider.shutdown()
    provider_content.shutdown()

    otel_content_added = median["otel_content"] - median["plain"]
    otel_added = median["otel"] - median["plain"]
    observe_added = median["observe"] - median["plain"]
    print(
        f"calls per round: {args.calls}, rounds: {args.rounds} (median shown), messages per call: {args.history}, "
        "content capture on (arguments snapshotted at call time)"
    )
    print(f"{'variant':<42}{'us/call':>10}{'added us':>10}")
    print(f"{'plain function':<42}{median['plain']:>10.2f}{0:>10.2f}")
    print(f"{'plain OpenTelemetry span, same attributes':<42}{median['otel']:>10.2f}{otel_added:>10.2f}")
    print(
        f"{'plain OpenTelemetry span, + messages (JSON)':<42}{median['otel_content']:>10.2f}{otel_content_added:>10.2f}"
    )
    print(f"{'@observe (pipeline to chDB)':<42}{median['observe']:>10.2f}{observe_added:>10.2f}")
    patched_added = median["patched"] - median["plain"]
    print(f"{'the same, as an instrumented client method':<42}{median['patched']:>10.2f}{patched_added:>10.2f}")
    print(f"ratio observe/plain-OTel added overhead: {observe_added / otel_added:.2f}  (target <= 0.5)")
    print(f"ratio observe/OTel span recording the same messages: {observe_added / otel_content_added:.2f}")
    print(
        f"ratio instrumented method/@observe added overhead: {patched_added / observe_added:.2f}, "
        f"round by round {paired(results, 'patched', 'observe', 'plain')}  (target <= 1.10)"
    )
    print(f"of which the call-time snapshot of the arguments alone (decorator._copy): {snapshot_us:.2f} us/call")
    if client:
        print(
            f"openai client over an in-process transport ({args.client_calls} calls per round per variant, "
            "export of each variant's spans timed with it):"
        )
        print(f"{'variant':<42}{'us/call':>10}{'added us':>10}{'CPU us':>10}{'added CPU':>10}")
        labels = {
            "client": "openai client, not instrumented",
            "client_observe": "@observe around the client call",
            "client_auto": 'instrument("openai"), no decorator',
        }
        for name, label in labels.items():
            added = median[name] - median["client"]
            added_cpu = median[f"{name}_cpu"] - median["client_cpu"]
            print(f"{label:<42}{median[name]:>10.2f}{added:>10.2f}{median[f'{name}_cpu']:>10.2f}{added_cpu:>10.2f}")
        for unit, suffix in (("wall", ""), ("CPU", "_cpu")):
            observed = median[f"client_observe{suffix}"] - median[f"client{suffix}"]
            auto = median[f"client_auto{suffix}"] - median[f"client{suffix}"]
            print(
                f"ratio instrumented/@observe added overhead ({unit} time): {auto / observed:.2f}, round by round "
                f"{paired(client, 'client_auto' + suffix, 'client_observe' + suffix, 'client' + suffix)}  "
                f"(target <= 1.10); difference {auto - observed:+.2f} us/call"
            )
    print(
        f"pipeline: enqueued {stats.enqueued}, exported {stats.exported}, spooled {stats.spooled}, "
        f"dropped {stats.dropped} {stats.dropped_by_reason or ''}"
    )


if __name__ == "__main__":
    main()
