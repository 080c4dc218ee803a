"""Cost of the GPU-cost-per-request views on an hour of a busy host.

    python bench/gpu_cost.py [--gpus 8] [--requests 20000] [--repeat 3]

One hour of ``gpu_samples`` (every 5 s, per GPU, an energy counter and power draw) and ``--requests``
``llm_calls`` rows of one self-hosted model spread over the hour (exponential durations, mean 6 s) are
written to an embedded store; then ``gpu_request_cost`` and ``gpu_idle_cost`` are queried for the hour.
Prints the query times (min and median of ``--repeat``) and checks that attributed plus idle energy is
the measured energy.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from llmpulse.agent.store.dsn import parse_dsn
from llmpulse.agent.store.insert import INSERT_SETTINGS
from llmpulse.agent.store.rows import ROW_FORMAT, rows_to_batch
from llmpulse.agent.store.schema import SchemaOptions, apply

DATABASE = "bench"
PARAMS = "start_ms={s:Int64}, end_ms={e:Int64}, price_per_kwh={k:Float64}, price_per_gpu_hour={h:Float64}"


def insert(client: Any, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        batch = rows_to_batch(table, rows[start : start + 5000])
        client.raw_insert(
            f"{DATABASE}.{table}",
            column_names=batch.columns,
            insert_block=batch.payload,
            fmt=ROW_FORMAT,
            settings=INSERT_SETTINGS,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    client = parse_dsn("chdb://" + tempfile.mkdtemp(prefix="llmpulse-gpu-cost-") + "/store").client()
    apply(client, SchemaOptions(database=DATABASE))
    rng = random.Random(1)
    start = datetime.fromtimestamp((int(time.time()) // 60 - 70) * 60, tz=timezone.utc)
    samples = []
    for gpu in range(args.gpus):
        energy_mj = 0
        for tick in range(720):
            watts = rng.uniform(100, 700)
            energy_mj += int(watts * 5 * 1000)
            samples.append(
                {
                    "Timestamp": start + timedelta(seconds=5 * tick),
                    "Hostname": "gpu-host",
                    "GpuIndex": gpu,
                    "GpuUuid": f"GPU-{gpu}",
                    "IsMig": False,
                    "ParentGpuUuid": "",
                    "EnergyMillijoules": energy_mj,
                    "PowerDrawWatts": watts,
                }
            )
    insert(client, "gpu_samples", samples)
    calls = [
        {
            "Timestamp": start + timedelta(seconds=rng.uniform(0, 3600)),
            "TraceId": f"{i:032x}",
            "SpanId": f"{i:016x}",
            "ServiceName": "app",
            "RequestModel": "llama-3.1-8b",
            "OutputTokens": rng.randint(10, 800),
            "DurationNs": int(rng.expovariate(1 / 6.0) * 1e9),
        }
        for i in range(args.requests)
    ]
    insert(client, "llm_calls", calls)
    insert(
        client,
        "gpu_model_map",
        [
            {
                "Hostname": "gpu-host",
                "Model": "llama-3.1-8b",
                "GpuUuid": "",
                "Enabled": True,
                "UpdatedAt": datetime.now(timezone.utc),
            }
        ],
    )
    params = {
        "s": int(start.timestamp() * 1000),
        "e": int((start + timedelta(hours=1)).timestamp() * 1000),
        "k": 0.15,
        "h": 2.5,
    }
    queries = {
        "gpu_request_cost": f"SELECT count(), sum(EnergyJoules), sum(GpuSeconds) FROM {DATABASE}.gpu_request_cost({PARAMS})",
        "gpu_idle_cost": f"SELECT count(), sum(AttributedEnergyJoules), sum(IdleEnergyJoules), sum(TotalEnergyJoules) "
        f"FROM {DATABASE}.gpu_idle_cost({PARAMS})",
    }
    print(f"{args.gpus} GPUs sampled every 5 s for 1 h ({len(samples)} samples), {args.requests} requests")
    answers = {}
    for view, sql in queries.items():
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            answers[view] = client.query(sql, parameters=params).result_rows[0]
            times.append(time.perf_counter() - started)
        times.sort()
        print(f"{view:<18} min {times[0]:.3f} s   median {times[len(times) // 2]:.3f} s   -> {answers[view]}")
    attributed, idle, total = answers["gpu_idle_cost"][1:]
    print(f"attributed + idle = {attributed + idle:,.0f} J, measured {total:,.0f} J")
    client.close()


if __name__ == "__main__":
    main()
