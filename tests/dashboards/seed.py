"""Fill one database with data for every dashboard, through the code paths that fill it in production.

- LLM calls, traces and feedback: the SDK pipeline (``configure`` + ``@observe``) driving the demo's
  simulated chat model, plus calls of a self-hosted model with a version and quantization;
- 90 minutes of history before that: GenAI spans written to ``otel_traces`` (as an OTel collector would),
  which the ``llm_calls`` materialized view turns into calls, so time series have many points;
- serving-engine metrics: ``ServingScraper`` on the recorded vLLM 0.11 ``/metrics`` pages;
- GPU samples: rows a GPU collector would write (two GPUs, energy counter, throttling), via rows_to_batch;
- analyzer results and alerts: ``AnalysisStore.write_results`` / ``write_alerts`` of drift results;
- per-call scores: ``write_scores`` (hallucination, injection, reference scores of two versions).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SERVED_MODEL = "meta-llama/Llama-3.1-8B-Instruct"  # the model_name label of the recorded vLLM pages
HOST = "gpu-host-1"
SERVING_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "serving"


@dataclass
class Seeded:
    database: str
    start: datetime
    end: datetime
    services: list[str]
    models: list[str]


def _insert(ch: Any, database: str, table: str, rows: list[dict[str, Any]]) -> None:
    from llmpulse.agent.store.insert import insert_rows

    insert_rows(ch, database, table, rows)


def _sdk_traffic(store_dsn: str, database: str, spool: Path) -> None:
    from llmpulse.agent.cli.demo.app import DemoApp, SimulatedChatModel, SimulatedRateLimitError

    from llmpulse import agent

    agent.configure(store_dsn, database=database, service_name="chat-app", spool_dir=str(spool), flush_interval=0.05)
    try:
        backend = SimulatedChatModel(seed=11, error_rate=0.15, speed=0.05)
        DemoApp(backend, ["gpt-4o-mini", "claude-3-5-haiku-20241022"]).run(24, random.Random(11))

        @agent.observe(kind="llm", model_version="2024-07", quantization="awq-int4", prompt_version="v2")
        def self_hosted(question: str, temperature: float, max_tokens: int) -> Any:
            return backend.create(
                model=SERVED_MODEL,
                messages=[{"role": "user", "content": question}],
                temperature=temperature,
                max_tokens=max_tokens,
            )

        for index in range(12):
            try:
                self_hosted(f"question {index}", (0.0, 0.7)[index % 2], (64, 256)[index % 3 == 0])
            except SimulatedRateLimitError:
                pass
        assert agent.flush(60), "the SDK pipeline did not reach the store"
    finally:
        agent.shutdown(10)


HISTORY_MINUTES = 90
_HISTORY_MODELS = (
    ("gpt-4o-mini", "openai", 0.8),
    ("claude-3-5-haiku-20241022", "anthropic", 1.1),
    (SERVED_MODEL, "vllm", 1.6),
)


def _history(ch: Any, database: str, end: datetime) -> None:
    """One GenAI client span every 20 s for 90 minutes; latency creeps up in the last half hour."""
    rng = random.Random(5)
    rows = []
    for step in range(HISTORY_MINUTES * 3):
        moment = end - timedelta(minutes=HISTORY_MINUTES) + timedelta(seconds=20 * step)
        model, provider, base = _HISTORY_MODELS[step % 3]
        slow = 1.6 if step > HISTORY_MINUTES * 2 else 1.0
        seconds = base * slow * rng.lognormvariate(0, 0.35)
        output_tokens = rng.randint(40, 400)
        failed = rng.random() < 0.05
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.request.temperature": str((0.0, 0.2, 0.7)[step % 3 if step % 2 else 0]),
            "gen_ai.request.max_tokens": str((256, 512)[step % 2]),
            "gen_ai.usage.input_tokens": str(rng.randint(50, 900)),
            "gen_ai.usage.output_tokens": str(output_tokens),
            "llmpulse.cost.usd": f"{output_tokens * 0.6e-6 * base:.8f}",
            "gen_ai.response.time_to_first_chunk": f"{seconds * 0.2:.4f}",
            "llmpulse.prompt.version": ("v1", "v2")[step % 2],
        }
        if model == SERVED_MODEL:
            attributes.update({"llmpulse.model.version": "2024-07", "llmpulse.model.quantization": "awq-int4"})
        if failed:
            attributes["error.type"] = "RateLimitError"
        rows.append(
            {
                "Timestamp": moment,
                "TraceId": f"{rng.getrandbits(128):032x}",
                "SpanId": f"{rng.getrandbits(64):016x}",
                "ParentSpanId": "",
                "SpanName": f"chat {model}",
                "SpanKind": "Client",
                "ServiceName": "chat-app" if step % 4 else "batch-jobs",
                "ResourceAttributes": {"service.name": "chat-app"},
                "SpanAttributes": attributes,
                "Duration": int(seconds * 1e9),
                "StatusCode": "Error" if failed else "Ok",
                "StatusMessage": "429 rate limited" if failed else "",
            }
        )
    _insert(ch, database, "otel_traces", rows)


def _serving(ch: Any, database: str, end: datetime) -> None:
    """The three recorded vLLM pages in turn every 5 minutes (a page going back reads as an engine restart)."""
    from llmpulse.collectors.serving import ServingScraper

    pages = [(SERVING_FIXTURES / f"vllm_v0_11_scrape{i}.txt").read_text() for i in (1, 2, 3)]
    feed = iter(pages * (HISTORY_MINUTES // 15 + 1))
    scraper = ServingScraper("http://127.0.0.1:8000/metrics", fetch=lambda url, timeout: next(feed), hostname=HOST)
    for step in range(HISTORY_MINUTES // 5):
        moment = end - timedelta(minutes=HISTORY_MINUTES) + timedelta(minutes=5 * step)
        _insert(ch, database, "serving_metrics", scraper.collect(moment)["serving_metrics"])


def _gpu(ch: Any, database: str, start: datetime, end: datetime) -> None:
    """Two GPUs: a sample every 30 s over the history, then every second around the SDK traffic."""
    first = end - timedelta(minutes=HISTORY_MINUTES)
    times = [first + timedelta(seconds=30 * i) for i in range(HISTORY_MINUTES * 2)]
    times += [
        start - timedelta(seconds=10) + timedelta(seconds=i) for i in range(int((end - start).total_seconds()) + 20)
    ]
    times = sorted(t for t in set(times) if t >= first)
    rows = []
    for gpu in (0, 1):
        energy = 1_000_000_000 * (gpu + 1)
        previous = times[0]
        for step, moment in enumerate(times):
            load = 0.5 + 0.5 * ((step + gpu * 7) % 10) / 10
            power = 90.0 + 250.0 * load
            energy += int(power * 1000 * (moment - previous).total_seconds())
            previous = moment
            throttled = ["sw_power_cap"] if load > 0.9 else (["gpu_idle"] if load < 0.55 else [])
            rows.append(
                {
                    "Timestamp": moment,
                    "Hostname": HOST,
                    "GpuIndex": gpu,
                    "GpuUuid": f"GPU-00000000-0000-0000-0000-00000000000{gpu}",
                    "GpuName": "NVIDIA H100 80GB HBM3",
                    "IsMig": False,
                    "ParentGpuUuid": "",
                    "GpuUtilizationPercent": round(100 * load),
                    "MemoryUsedBytes": int((40 + 30 * load) * 2**30),
                    "MemoryTotalBytes": 80 * 2**30,
                    "PowerDrawWatts": power,
                    "PowerLimitWatts": 700.0,
                    "EnergyMillijoules": energy,
                    "GpuTemperatureCelsius": int(45 + 40 * load),
                    "ThrottleReasons": throttled,
                }
            )
    _insert(ch, database, "gpu_samples", rows)


def _analysis(ch: Any, database: str, start: datetime, end: datetime, models: list[str]) -> None:
    from llmpulse.analyzers.framework.results import Alert, AnalysisResult
    from llmpulse.analyzers.framework.windows import Window
    from llmpulse.analyzers.io.store import AnalysisStore

    store = AnalysisStore(ch, database)
    results = []
    for hour in range(3):
        window = Window(end - timedelta(minutes=20 * (3 - hour)), end - timedelta(minutes=20 * (2 - hour)))
        reference = Window(window.start - timedelta(days=1), window.start)
        for model in models:
            p_value = 0.4 if hour < 2 else 0.002
            base = dict(
                analyzer="drift",
                version="1",
                window_start=window.start,
                window_end=window.end,
                reference_start=reference.start,
                reference_end=reference.end,
                segment={"service": "chat-app", "model": model},
            )
            results.append(
                AnalysisResult(
                    **base,
                    metric="prompt_embedding_mmd2",
                    value=0.01 + 0.05 * hour,
                    p_value=p_value,
                    threshold=0.05,
                    alert=p_value < 0.05,
                    summary=f"prompt embeddings of {model} drifted (MMD² p={p_value})",
                )
            )
            results.append(AnalysisResult(**base, metric="prompt_embedding_centroid_distance", value=0.02 * hour))
    store.write_results(results)
    store.write_alerts([Alert.from_result(r) for r in results if r.alert])


def _scores(ch: Any, database: str) -> None:
    from llmpulse.analyzers.io.scores import ScoreRow, write_scores

    calls = ch.query(
        "SELECT Timestamp, TraceId, SpanId, ServiceName, RequestModel, ModelVersion, PromptVersion"
        " FROM {db:Identifier}.llm_calls WHERE StatusCode != 'Error' ORDER BY Timestamp",
        parameters={"db": database},
    ).result_rows
    rows = []
    for index, (ts, trace, span, service, model, model_version, prompt_version) in enumerate(calls):
        common = dict(
            timestamp=ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts,
            trace_id=trace,
            span_id=span,
            service=service,
            model=model,
            model_version=model_version,
            prompt_version=prompt_version,
        )
        rows.append(
            ScoreRow(
                **common,
                scorer="hallucination",
                scorer_version="1",
                score=0.1 * (index % 10),
                flagged=index % 5 == 0,
                method="signals",
                threshold=0.5,
            )
        )
        rows.append(
            ScoreRow(
                **common,
                scorer="injection",
                scorer_version="1",
                score=0.05 * (index % 4),
                flagged=index % 9 == 0,
                method="patterns",
                threshold=0.5,
            )
        )
        version = "v1" if index % 2 else "v2"
        rows.append(
            ScoreRow(
                **common,
                scorer="quality",
                scorer_version="1",
                score=0.6 + 0.02 * (index % 7),
                flagged=False,
                method="reference:rougeL",
                dataset="faq",
                item_id=f"q{index % 5}",
                version=version,
                signals={"rougeL": 0.6 + 0.02 * (index % 7), "bleu": 0.3},
            )
        )
    write_scores(ch, database, rows)


def seed(ch: Any, store_dsn: str, database: str, spool: Path) -> Seeded:
    from llmpulse.agent.store.schema import SchemaOptions, apply

    apply(ch, SchemaOptions(database=database))
    start = datetime.now(timezone.utc)
    _history(ch, database, start)
    _sdk_traffic(store_dsn, database, spool)
    end = datetime.now(timezone.utc)
    models = [
        str(r[0])
        for r in ch.query(
            "SELECT DISTINCT RequestModel FROM {db:Identifier}.llm_calls ORDER BY 1", parameters={"db": database}
        ).result_rows
    ]
    _serving(ch, database, end)
    _gpu(ch, database, start, end)
    _analysis(ch, database, start, end, models)
    _scores(ch, database)
    return Seeded(database=database, start=start, end=end, services=["chat-app"], models=models)
