"""GPU cost per request (views gpu_request_cost / gpu_idle_cost) on constructed data with a hand-computed answer.

Host ``gpu-host`` has GPU A (energy counter) and GPU B (counter unreadable: power x time), sampled at
t = 50, 55, 60, 65, 70 s after a minute boundary T0 (so the intervals straddle a one-minute join bucket):

    interval        (50,55]  (55,60]  (60,65]  (65,70]
    A energy (J)     1000     1500     1000      500     counter deltas (mJ / 1000)
    B power (W)   100->100  100->300 300->300  300->100   trapezoid x 5 s: 500, 1000, 1500, 1000 J

Requests of model ``llama`` (served on gpu-host): R1 [51, 59], R2 [54, 62], R3 [66, 67].

In each interval the busy time is the union of the requests' overlaps; the interval's energy is split
busy/idle by time, and the busy part among the requests in proportion to their overlap:

    (50,55]: R1 4 s, R2 1 s, union 4 s -> busy 4/5 of the energy; R1 gets 4/5 of that, R2 1/5
    (55,60]: R1 4 s, R2 5 s, union 5 s -> all busy;                 R1 4/9,  R2 5/9
    (60,65]: R2 2 s               -> busy 2/5;                      R2 all
    (65,70]: R3 1 s               -> busy 1/5;                      R3 all

    R1 energy = A: 1000*4/5*4/5 + 1500*4/9 = 640 + 666.67     B: 320 + 444.44          = 960 + 10000/9 J
    R2 energy = A: 160 + 833.33 + 400                        B: 80 + 555.56 + 600     = 1240 + 12500/9 J
    R3 energy = A: 500/5 = 100                               B: 1000/5 = 200          = 300 J
    GPU-seconds per GPU: R1 4*4/5 + 5*4/9, R2 4*1/5 + 5*5/9 + 2, R3 1 (two GPUs: twice that)
    idle: A 8 s, 200 + 0 + 600 + 400 = 1200 J; B 8 s, 100 + 0 + 900 + 800 = 1800 J
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from .store_rows import create_schema, insert_rows

# A recent minute boundary: rows older than the tables' TTLs are dropped as they are inserted.
T0 = datetime.fromtimestamp((int(datetime.now(timezone.utc).timestamp()) // 60 - 10) * 60, tz=timezone.utc)
HOST = "gpu-host"
PRICE_PER_KWH = 0.36  # 1 J = 1e-7 of the currency
PRICE_PER_GPU_HOUR = 3.6  # 1 GPU-second = 0.001


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _sample(gpu: str, index: int, t: float, energy_mj: int | None, power_w: float | None) -> dict:
    return {
        "Timestamp": _at(t),
        "Hostname": HOST if gpu != "GPU-C" else "other-host",
        "GpuIndex": index,
        "GpuUuid": gpu,
        "GpuName": "NVIDIA H100 80GB HBM3",
        "IsMig": False,
        "ParentGpuUuid": "",
        "EnergyMillijoules": energy_mj,
        "PowerDrawWatts": power_w,
    }


def _call(span: str, model: str, start: float, end: float, output_tokens: int | None) -> dict:
    return {
        "Timestamp": _at(start),
        "TraceId": f"trace-{span}",
        "SpanId": span,
        "ServiceName": "chat-app",
        "RequestModel": model,
        "OutputTokens": output_tokens,
        "DurationNs": round((end - start) * 1e9),
    }


@pytest.fixture
def store(ch, database):
    create_schema(ch, database)
    times = [50, 55, 60, 65, 70]
    energy_a = [1_000_000, 2_000_000, 3_500_000, 4_500_000, 5_000_000]
    power_b = [100.0, 100.0, 300.0, 300.0, 100.0]
    samples = [_sample("GPU-A", 0, t, e, 250.0) for t, e in zip(times, energy_a, strict=True)]
    samples += [_sample("GPU-B", 1, t, None, p) for t, p in zip(times, power_b, strict=True)]
    samples += [_sample("GPU-C", 0, t, 1000 * t, 50.0) for t in times]  # another host, serving nothing we know
    # a MIG row of GPU A must not count twice
    samples.append({**_sample("MIG-A-1", 0, 60, None, None), "IsMig": True, "ParentGpuUuid": "GPU-A"})
    insert_rows(ch, database, "gpu_samples", samples)
    insert_rows(
        ch,
        database,
        "llm_calls",
        [
            _call("r1", "llama", 51, 59, 100),
            _call("r2", "llama", 54, 62, 250),
            _call("r3", "llama", 66, 67, None),
            _call("hosted", "gpt-4o", 52, 58, 80),  # a provider's model: no GPU of ours
            _call("later", "llama", 200, 210, 10),  # outside the window
        ],
    )
    # the serving engine on gpu-host reports model llama: all of the host's GPUs serve it
    insert_rows(
        ch,
        database,
        "serving_metrics",
        [
            {
                "Timestamp": _at(t),
                "Hostname": HOST,
                "Endpoint": "http://localhost:8000/metrics",
                "Engine": "vllm",
                "ModelName": "llama",
                "Metric": "requests_running",
                "MetricName": "vllm:num_requests_running",
                "MetricType": "gauge",
                "Value": 1.0,
            }
            for t in (45, 55, 65)
        ],
    )
    return ch, database


def _window() -> dict:
    return {
        "s": int(_at(40).timestamp() * 1000),
        "e": int(_at(100).timestamp() * 1000),
        "kwh": PRICE_PER_KWH,
        "hour": PRICE_PER_GPU_HOUR,
    }


def _request_costs(ch, database) -> dict[str, dict]:
    result = ch.query(
        f"SELECT * FROM {database}.gpu_request_cost(start_ms={{s:Int64}}, end_ms={{e:Int64}}, "
        f"price_per_kwh={{kwh:Float64}}, price_per_gpu_hour={{hour:Float64}})",
        parameters=_window(),
    )
    return {row["SpanId"]: row for row in result.named_results()}


def _idle(ch, database) -> dict[str, dict]:
    result = ch.query(
        f"SELECT * FROM {database}.gpu_idle_cost(start_ms={{s:Int64}}, end_ms={{e:Int64}}, "
        f"price_per_kwh={{kwh:Float64}}, price_per_gpu_hour={{hour:Float64}})",
        parameters=_window(),
    )
    return {row["GpuUuid"]: row for row in result.named_results()}


def test_energy_and_gpu_seconds_split_among_requests_in_flight(store) -> None:
    ch, database = store
    costs = _request_costs(ch, database)
    assert set(costs) == {"r1", "r2", "r3"}  # not the hosted model, not the request outside the window

    expected = {
        "r1": (960 + 10000 / 9, 2 * (4 * 4 / 5 + 5 * 4 / 9)),
        "r2": (1240 + 12500 / 9, 2 * (4 / 5 + 5 * 5 / 9 + 2)),
        "r3": (300.0, 2.0),
    }
    for span, (joules, gpu_seconds) in expected.items():
        row = costs[span]
        assert row["EnergyJoules"] == pytest.approx(joules, rel=1e-9), span
        assert row["GpuSeconds"] == pytest.approx(gpu_seconds, rel=1e-9), span
        assert row["EnergyCost"] == pytest.approx(joules * 1e-7, rel=1e-9)
        assert row["GpuTimeCost"] == pytest.approx(gpu_seconds * 1e-3, rel=1e-9)
        assert row["TotalCost"] == pytest.approx(joules * 1e-7 + gpu_seconds * 1e-3, rel=1e-9)
        assert (row["Model"], row["ServiceName"], row["Gpus"]) == ("llama", "chat-app", 2)
        assert row["IntervalsWithoutEnergy"] == 0
    assert costs["r1"]["EnergyJoulesPer1kOutputTokens"] == pytest.approx((960 + 10000 / 9) * 10, rel=1e-9)
    assert costs["r2"]["GpuSecondsPer1kOutputTokens"] == pytest.approx(expected["r2"][1] * 4, rel=1e-9)
    assert costs["r3"]["EnergyJoulesPer1kOutputTokens"] is None  # no output-token count: no per-1k figure


def test_idle_time_is_reported_apart_and_nothing_is_lost(store) -> None:
    ch, database = store
    idle = _idle(ch, database)
    assert set(idle) == {"GPU-A", "GPU-B", "GPU-C"}
    a, b, c = idle["GPU-A"], idle["GPU-B"], idle["GPU-C"]
    assert (a["TotalSeconds"], a["TotalEnergyJoules"]) == pytest.approx((20.0, 4000.0))
    assert (a["IdleSeconds"], a["IdleEnergyJoules"]) == pytest.approx((8.0, 1200.0))
    assert (b["IdleSeconds"], b["IdleEnergyJoules"]) == pytest.approx((8.0, 1800.0))
    assert b["TotalEnergyJoules"] == pytest.approx(4000.0)
    assert a["IdleEnergyCost"] == pytest.approx(1200 * 1e-7) and a["IdleGpuTimeCost"] == pytest.approx(8e-3)
    # GPU C serves nothing known: all of its time and energy is idle (counter: 20 J over the window)
    assert (c["AttributedSeconds"], c["IdleSeconds"], c["IdleEnergyJoules"]) == pytest.approx((0.0, 20.0, 20.0))

    costs = _request_costs(ch, database)
    attributed = sum(r["EnergyJoules"] for r in costs.values())
    assert attributed == pytest.approx(a["AttributedEnergyJoules"] + b["AttributedEnergyJoules"], rel=1e-9)
    assert attributed + a["IdleEnergyJoules"] + b["IdleEnergyJoules"] == pytest.approx(8000.0, rel=1e-9)
    assert sum(r["GpuSeconds"] for r in costs.values()) + 16 == pytest.approx(40.0, rel=1e-9)


def test_explicit_map_pins_the_model_to_some_gpus(store) -> None:
    ch, database = store
    now = datetime.now(timezone.utc)
    insert_rows(
        ch,
        database,
        "gpu_model_map",
        [{"Hostname": HOST, "Model": "llama", "GpuUuid": "GPU-A", "Enabled": True, "UpdatedAt": now}],
    )
    costs = _request_costs(ch, database)
    assert costs["r1"]["Gpus"] == 1
    assert costs["r1"]["EnergyJoules"] == pytest.approx(640 + 1500 * 4 / 9, rel=1e-9)
    assert costs["r3"]["EnergyJoules"] == pytest.approx(100.0)
    idle = _idle(ch, database)
    assert idle["GPU-B"]["IdleEnergyJoules"] == pytest.approx(4000.0)  # B now serves nothing known

    # withdrawing the mapping (latest row wins) falls back to the serving engine's report
    insert_rows(
        ch,
        database,
        "gpu_model_map",
        [
            {
                "Hostname": HOST,
                "Model": "llama",
                "GpuUuid": "GPU-A",
                "Enabled": False,
                "UpdatedAt": now + timedelta(seconds=1),
            }
        ],
    )
    assert _request_costs(ch, database)["r1"]["Gpus"] == 2


def test_a_gpu_without_energy_readings_counts_time_and_says_energy_is_missing(store) -> None:
    ch, database = store
    insert_rows(ch, database, "gpu_samples", [_sample("GPU-D", 2, t, None, None) for t in (50, 55, 60, 65, 70)])
    r3 = _request_costs(ch, database)["r3"]
    assert (r3["Gpus"], r3["IntervalsWithoutEnergy"]) == (3, 1)
    assert r3["GpuSeconds"] == pytest.approx(3.0) and r3["EnergyJoules"] == pytest.approx(300.0)
    d = _idle(ch, database)["GPU-D"]
    assert d["TotalSeconds"] == pytest.approx(20.0) and d["TotalEnergyJoules"] is None
