"""``llmpulse demo``: a small instrumented app, then a summary read back from ClickHouse.

By default it talks to a built-in SIMULATED chat model (canned answers, realistic token counts and
latencies, occasional rate-limit errors), so it runs offline with no keys. ``--base-url`` and
``--model`` point it at a real OpenAI-compatible endpoint instead (needs the ``openai`` package).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from llmpulse.agent import (
    attributes,
    configure,
    current_ids,
    feedback,
    flush,
    observe,
    shutdown,
    stats,
    update_current_span,
)
from llmpulse.agent.store.dsn import parse_dsn

from .support import (
    CURRENT,
    REFERENCE,
    REFERENCE_DATASET,
    Phase,
    SimulatedSupportModel,
    SupportBot,
    reference_items,
)

_ANSWERS = (
    "ClickHouse stores data by column, so aggregations over a few columns read little data.",
    "A materialized view in ClickHouse transforms each inserted block and writes the result to a target table.",
    "Time to first token measures how long a streaming request waits before the first chunk arrives.",
    "The p95 latency is the value below which 95 percent of the requests complete.",
    "Embedding drift compares the distribution of recent prompt embeddings with a reference window.",
)
_QUESTIONS = (
    "How does ClickHouse make aggregations fast?",
    "What does a materialized view do?",
    "What is time to first token?",
    "Explain p95 latency in one sentence.",
    "What is embedding drift?",
)
_DOCS = (
    "ClickHouse is a column-oriented database: each column is stored separately and compressed.",
    "Materialized views run on insert and write transformed rows to another table.",
)


class SimulatedRateLimitError(Exception):
    """What the simulated provider raises now and then, like a 429 from a real one."""


@dataclass
class SimulatedChatModel:
    """An offline stand-in for an OpenAI-compatible chat endpoint. Replies are canned, not generated."""

    seed: int = 7
    error_rate: float = 0.06
    speed: float = 1.0  # scales the simulated latencies

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _reply(self, model: str, messages: list[dict[str, Any]], max_tokens: int) -> tuple[str, int, int]:
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        answer = self._rng.choice(_ANSWERS)
        input_tokens = max(1, len(prompt.split()) * 4 // 3)
        output_tokens = min(max_tokens, max(1, len(answer.split()) * 4 // 3))
        return answer, input_tokens, output_tokens

    def _latency(self, model: str, output_tokens: int) -> float:
        per_token = 0.0012 if "mini" in model or "haiku" in model else 0.0025
        return self.speed * (0.02 + per_token * output_tokens + self._rng.expovariate(1 / 0.015))

    def create(
        self, *, model: str, messages: list[dict[str, Any]], temperature: float = 1.0, max_tokens: int = 256
    ) -> dict[str, Any]:
        if self._rng.random() < self.error_rate:
            time.sleep(0.005 * self.speed)
            raise SimulatedRateLimitError("simulated 429: rate limit reached for requests")
        answer, input_tokens, output_tokens = self._reply(model, messages, max_tokens)
        time.sleep(self._latency(model, output_tokens))
        return {
            "id": f"chatcmpl-sim{self._rng.getrandbits(48):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }

    def stream(self, *, model: str, messages: list[dict[str, Any]], max_tokens: int = 256) -> Iterator[dict[str, Any]]:
        answer, input_tokens, output_tokens = self._reply(model, messages, max_tokens)
        chunk_id = f"chatcmpl-sim{self._rng.getrandbits(48):012x}"
        time.sleep(self.speed * (0.03 + self._rng.expovariate(1 / 0.02)))  # time to first token
        words = answer.split(" ")
        for index, word in enumerate(words):
            time.sleep(self.speed * 0.004)
            yield {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word + (" " if index < len(words) - 1 else "")}}],
            }
        yield {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
        }


class DemoApp:
    """The instrumented sample app: plain, async and streaming calls, a RAG chain, errors, feedback."""

    def __init__(self, backend: Any, models: list[str], *, real: bool = False) -> None:
        self.backend = backend
        self.models = models
        self.real = real

        @observe(kind="llm", prompt_template="qa", prompt_version="v1")
        def chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.2, max_tokens: int = 200) -> Any:
            if self.real:
                return self.backend.chat.completions.create(
                    model=model, messages=messages, temperature=temperature, max_tokens=max_tokens
                )
            return self.backend.create(model=model, messages=messages, temperature=temperature, max_tokens=max_tokens)

        @observe(kind="llm", prompt_template="qa", prompt_version="v1")
        async def achat(model: str, messages: list[dict[str, Any]], temperature: float = 0.2) -> Any:
            return await asyncio.to_thread(chat.__wrapped__, model, messages, temperature)

        @observe(kind="llm", prompt_template="qa-stream", prompt_version="v1")
        def chat_stream(model: str, messages: list[dict[str, Any]], max_tokens: int = 200) -> Any:
            if self.real:
                return self.backend.chat.completions.create(
                    model=model,
                    messages=messages,
                    max_tokens=max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            return self.backend.stream(model=model, messages=messages, max_tokens=max_tokens)

        @observe(kind="tool")
        def retrieve(question: str) -> list[str]:
            time.sleep(0.002)
            return list(_DOCS)

        @observe(kind="chain")
        def answer_with_context(question: str, model: str) -> str:
            documents = retrieve(question)
            update_current_span(rag_context=documents)
            prompt = "Answer from the context.\n\n" + "\n".join(documents) + f"\n\nQuestion: {question}"
            reply = rag_call(model, [{"role": "user", "content": prompt}], documents)
            return _text_of(reply)

        @observe(kind="llm", prompt_template="rag", prompt_version="v2", context_arg="documents")
        def rag_call(model: str, messages: list[dict[str, Any]], documents: list[str]) -> Any:
            return chat.__wrapped__(model, messages)

        @observe(kind="chain", name="handle_question")
        def handle(question: str, model: str, mode: str, temperature: float) -> tuple[str, tuple[str, str] | None]:
            messages = [{"role": "user", "content": question}]
            if mode == "stream":
                text = "".join(_stream_text(chat_stream(model, messages)))
            elif mode == "rag":
                text = answer_with_context(question, model)
            else:
                text = _text_of(chat(model, messages, temperature=temperature))
            return text, current_ids()

        self.achat, self.handle = achat, handle

    def run(self, calls: int, rng: random.Random) -> dict[str, int]:
        counts = {"sync": 0, "async": 0, "stream": 0, "chain": 0, "errors": 0, "feedback": 0}
        for index in range(calls):
            model = rng.choice(self.models)
            question = rng.choice(_QUESTIONS)
            mode = "stream" if index % 4 == 3 else "rag" if index % 5 == 4 else "sync"
            with attributes(user_id=f"user-{index % 7}", session_id=f"session-{index % 11}"):
                try:
                    text, ids = self.handle(question, model, mode, rng.choice((0.0, 0.2, 0.7)))
                except SimulatedRateLimitError:
                    counts["errors"] += 1
                    continue
            counts[{"stream": "stream", "rag": "chain", "sync": "sync"}[mode]] += 1
            if text and ids and index % 3 == 0:
                feedback(trace_id=ids[0], span_id=ids[1], name="thumbs", score=rng.choice((0.0, 1.0, 1.0)))
                counts["feedback"] += 1
        asyncio.run(self._run_async(max(2, calls // 4), counts))
        return counts

    async def _run_async(self, count: int, counts: dict[str, int]) -> None:
        async def one(index: int) -> None:
            try:
                await self.achat(self.models[index % len(self.models)], [{"role": "user", "content": _QUESTIONS[0]}])
                counts["async"] += 1
            except SimulatedRateLimitError:
                counts["errors"] += 1

        await asyncio.gather(*(one(i) for i in range(count)))


def _text_of(reply: Any) -> str:
    if isinstance(reply, dict):
        return reply["choices"][0]["message"]["content"]
    return reply.choices[0].message.content or ""


def _stream_text(stream: Any) -> Iterator[str]:
    for chunk in stream:
        choices = chunk["choices"] if isinstance(chunk, dict) else chunk.choices
        if choices:
            delta = choices[0]["delta"] if isinstance(choices[0], dict) else choices[0].delta
            content = delta.get("content") if isinstance(delta, dict) else delta.content
            if content:
                yield content


SUMMARY_SQL = """
SELECT
    RequestModel AS model,
    count() AS calls,
    countIf(StatusCode = 'Error') AS errors,
    sum(ifNull(InputTokens, 0)) AS input_tokens,
    sum(ifNull(OutputTokens, 0)) AS output_tokens,
    sum(CostUSD) AS cost_usd,
    quantile(0.5)(DurationNs / 1e6) AS p50_ms,
    quantile(0.95)(DurationNs / 1e6) AS p95_ms,
    avgIf(TimeToFirstTokenSeconds * 1000, TimeToFirstTokenSeconds IS NOT NULL) AS ttft_ms,
    countIf(Stream) AS streamed
FROM {db:Identifier}.llm_calls
WHERE ServiceName = {service:String} AND Timestamp >= fromUnixTimestamp64Nano({since:Int64})
GROUP BY model
ORDER BY model
"""


def read_summary(client: Any, database: str, service: str, since_ns: int) -> list[dict[str, Any]]:
    result = client.query(SUMMARY_SQL, parameters={"db": database, "service": service, "since": since_ns})
    return list(result.named_results())


def format_summary(rows: list[dict[str, Any]]) -> str:
    header = f"{'model':<28}{'calls':>6}{'errors':>7}{'in tok':>8}{'out tok':>8}{'cost $':>11}{'p50 ms':>9}{'p95 ms':>9}{'ttft ms':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        cost = "n/a" if r["cost_usd"] is None else f"{r['cost_usd']:.6f}"
        ttft = "-" if r["ttft_ms"] is None or r["ttft_ms"] != r["ttft_ms"] else f"{r['ttft_ms']:.0f}"
        lines.append(
            f"{r['model']:<28}{r['calls']:>6}{r['errors']:>7}{r['input_tokens']:>8}{r['output_tokens']:>8}"
            f"{cost:>11}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}{ttft:>9}"
        )
    return "\n".join(lines)


def run_demo(
    *,
    dsn: str | None,
    calls: int = 40,
    seed: int = 7,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    service_name: str = "llmpulse-demo",
    support_calls: int = 120,
    report: str | None = "llmpulse-report.html",
    analyze: bool = True,
    out: Any = print,
) -> dict[str, Any]:
    """Run the sample app in two phases, flush, print a summary, run the analyzers, write the HTML report.

    With the simulated model the second phase brings drift, hallucinations and prompt injections that
    the analyzers are expected to find; against a real endpoint only the sample app runs.
    """
    if base_url:
        try:
            import openai
        except ImportError as exc:
            raise SystemExit("llmpulse demo --base-url needs the openai package: pip install openai") from exc
        if not model:
            raise SystemExit("llmpulse demo --base-url needs --model NAME (the model the endpoint serves)")
        backend: Any = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed")
        models, real = [model], True
        out(f"Talking to the OpenAI-compatible endpoint at {base_url} (model {model}).")
    else:
        backend = SimulatedChatModel(seed=seed)
        models, real = [model] if model else ["gpt-4o-mini", "claude-3-5-haiku-20241022"], False
        out("Using the built-in SIMULATED chat model: no network, canned answers, simulated latency and errors.")
        out("Costs below are what these token counts would cost at the vendored list prices.")
    config = configure(dsn, service_name=service_name)
    target = config.store or parse_dsn(dsn)
    out(f"Store: {target.safe()}")
    rng = random.Random(seed)
    since_ns = time.time_ns()
    started = time.perf_counter()
    app = DemoApp(backend, models, real=real)
    bot = None if real else SupportBot(SimulatedSupportModel(random.Random(seed + 1), speed=0.5))
    phases: list[tuple[datetime, datetime]] = []
    counts: dict[str, int] = {}
    bot_counts: dict[str, int] = {}
    for number, phase in enumerate((REFERENCE, CURRENT), 1):
        if bot is None and number == 2:
            break
        begin = datetime.now(timezone.utc)
        if bot is not None:
            out(f"Phase {number}/2 ({phase.name}): {_phase_text(phase)} ...")
        for key, value in app.run(calls // 2 if bot else calls, rng).items():
            counts[key] = counts.get(key, 0) + value
        if bot is not None:
            for key, value in bot.run(phase, support_calls, rng).items():
                bot_counts[key] = bot_counts.get(key, 0) + value
        flush(60)
        phases.append((begin, datetime.now(timezone.utc)))
    flushed = flush(60)
    elapsed = time.perf_counter() - started
    pipeline_stats = stats()
    out(
        f"Made {counts['sync']} sync, {counts['async']} async, {counts['stream']} streaming and {counts['chain']} "
        f"RAG-chain calls, {counts['errors']} failed (simulated rate limits), {counts['feedback']} feedback "
        f"records in {elapsed:.1f}s."
    )
    if bot_counts:
        out(
            f"Support bot: {bot_counts['grounded']} grounded answers, {bot_counts['made_up']} made-up answers, "
            f"{bot_counts['drifted']} questions off its topic, {bot_counts['injection']} injection attempts."
        )
    out(
        f"Pipeline: {pipeline_stats.exported} records exported, {pipeline_stats.spooled} spooled, "
        f"{pipeline_stats.dropped} dropped{'' if flushed else ' (some records still spooled: store unreachable?)'}."
    )
    client = target.client()
    results: list[Any] = []
    report_path = None
    try:
        rows = read_summary(client, target.database, service_name, since_ns)
        feedback_rows = client.query(
            "SELECT count(), avg(Score) FROM {db:Identifier}.feedback WHERE ServiceName = {s:String} "
            "AND Timestamp >= fromUnixTimestamp64Nano({since:Int64})",
            parameters={"db": target.database, "s": service_name, "since": since_ns},
        ).result_rows[0]
        out("")
        out("LLM calls read back from ClickHouse (table llm_calls):")
        out(format_summary(rows))
        out(
            f"Feedback rows: {feedback_rows[0]} (mean score {feedback_rows[1] if feedback_rows[0] else float('nan'):.2f})"
        )
        if analyze and len(phases) == 2:
            results = _analyze(client, target.database, phases, out)
        if report:
            report_path = _write_report(client, target.database, target.safe(), report, out)
    finally:
        client.close()
        shutdown()
    return {
        "counts": counts,
        "support": bot_counts,
        "rows": rows,
        "feedback": feedback_rows[0],
        "stats": pipeline_stats,
        "results": results,
        "report": report_path,
    }


def _phase_text(phase: Phase) -> str:
    if not (phase.drift_share or phase.made_up_share or phase.injection_share):
        return f"support questions answered from the knowledge base (prompt {phase.prompt_version})"
    return (
        f"prompt {phase.prompt_version}; {phase.drift_share:.0%} of questions off-topic, "
        f"{phase.made_up_share:.0%} of answers made up, {phase.injection_share:.0%} injection attempts"
    )


ANALYZERS = ("operational", "drift", "hallucination", "injection", "quality")


def _analyze(client: Any, database: str, phases: list[tuple[datetime, datetime]], out: Any) -> list[Any]:
    """The analyzers on phase 2 (window) against phase 1 (reference); prints what they found."""
    try:
        from llmpulse.analyzers.framework.runner import run_analyzer
        from llmpulse.analyzers.framework.windows import Window
        from llmpulse.analyzers.io.references import store_items
        from llmpulse.analyzers.io.store import AnalysisStore
        from llmpulse.analyzers.quality.references import ReferenceItem
    except ImportError as exc:
        out("")
        out(f"Analyzers skipped: they need the analyzers extra ({exc.name} is missing):")
        out("  pip install 'llmpulse[analyzers]'   (on a CPU-only machine: pip install torch==2.13.0 first)")
        return []
    (ref_start, ref_end), (cur_start, cur_end) = phases
    window, reference = Window(cur_start, cur_end), Window(ref_start, ref_end)
    items = [ReferenceItem(dataset=REFERENCE_DATASET, **item) for item in reference_items()]
    store_items(client, database, items, source="llmpulse demo")
    out("")
    out(f"Running the analyzers on phase 2 against phase 1 (loaded {len(items)} reference answers) ...")
    store = AnalysisStore(client, database)
    results: list[Any] = []
    for name in ANALYZERS:
        options = {"dataset": REFERENCE_DATASET} if name == "quality" else {}
        results.extend(run_analyzer(name, store, window, reference, options))
    out(format_analysis(results))
    return results


def format_analysis(results: list[Any]) -> str:
    """The alerting results first, then a count of the rest."""
    alerting = [r for r in results if r.alert]
    lines = [f"{len(alerting)} alerts from {len(results)} results:"]
    for r in alerting:
        segment = ", ".join(f"{k}={v}" for k, v in sorted(r.segment.items()))
        p = "" if r.p_value is None else f", p={r.p_value:.2g}"
        lines.append(f"  ALERT {r.analyzer}/{r.metric} [{segment}]: {r.summary or r.value}{p}")
    quiet = {}
    for r in results:
        if not r.alert:
            quiet[r.status] = quiet.get(r.status, 0) + 1
    if quiet:
        lines.append("  no alert: " + ", ".join(f"{n} {status}" for status, n in sorted(quiet.items())))
    return "\n".join(lines)


def _write_report(client: Any, database: str, store_label: str, path: str, out: Any) -> str | None:
    try:
        from llmpulse.dashboards.report import render_report
    except ImportError as exc:
        out(f"Report skipped: {exc}")
        return None
    html = render_report(client, database, window="1h", store_label=store_label, title="llmpulse demo")
    full = os.path.abspath(path)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(html)
    out("")
    out(f"Report: {full}")
    out("Open it in a browser: charts of the calls, GPU and serving panels, analyzer results and the alert list.")
    return full
