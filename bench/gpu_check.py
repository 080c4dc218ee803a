"""Read every GPU of this machine through the GPU collector and measure what one tick costs.

Prints every reading of every GPU (and MIG instance) with the fields NVML could not read and why, the
processes holding GPU memory, then the wall time of one ``collect()`` tick (mean, p95, max over N ticks)
and the mean cost of each NVML call inside a tick. Without an NVIDIA driver it says so and exits 0.

    python bench/gpu_check.py --ticks 20
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from llmpulse.collectors.gpu import DEFAULT_INTERVAL_SECONDS, GpuCollector


class TimedNvml:
    """The pynvml module with each call timed (for the per-call breakdown only, not the tick figures)."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._nvml, name)
        if not callable(value) or isinstance(value, type) or not name.startswith("nvml"):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self.seconds[name].append(time.perf_counter() - started)

        return timed


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def show_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    for sample in rows["gpu_samples"]:
        kind = (
            f"MIG {sample['MigIndex']} of GPU {sample['GpuIndex']}" if sample["IsMig"] else f"GPU {sample['GpuIndex']}"
        )
        print(f"\n== {kind}: {sample['GpuName']} {sample['GpuUuid']}")
        for column, value in sample.items():
            if column in ("Unreadable", "Timestamp"):
                continue
            reason = sample["Unreadable"].get(column)
            print(f"   {column:26} {value!r}" + (f"   (unreadable: {reason})" if reason else ""))
    print(f"\n== processes ({len(rows['gpu_processes'])})")
    for proc in rows["gpu_processes"]:
        memory = proc["UsedMemoryBytes"]
        shown = "n/a" if memory is None else f"{memory / 2**20:.0f} MiB"
        print(
            f"   GPU {proc['GpuIndex']} pid {proc['Pid']:>8} {proc['ProcessType']:16} {shown:>10}  "
            f"{proc['ProcessName']!r}  mig={proc['MigUuid']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=20, help="collect() ticks to time (default 20)")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between ticks (default 0.2)")
    args = parser.parse_args()
    if args.ticks < 1:
        parser.error("--ticks must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    collector = GpuCollector()
    if not collector.start():
        print("no NVIDIA GPU/driver found on this machine: nothing to read (see the warning above); exit 0")
        return 0
    try:
        print(f"driver {collector.driver_version}, host {collector.hostname}")
        show_rows(collector.collect(datetime.now(timezone.utc)))

        ticks = []
        for _ in range(args.ticks):
            started = time.perf_counter()
            collector.collect(datetime.now(timezone.utc))
            ticks.append(time.perf_counter() - started)
            time.sleep(args.pause)
    finally:
        collector.close()

    import pynvml

    timed = TimedNvml(pynvml)
    breakdown = GpuCollector(timed)
    breakdown.start()
    try:
        for _ in range(args.ticks):
            breakdown.collect(datetime.now(timezone.utc))
    finally:
        breakdown.close()

    ms = [t * 1000 for t in ticks]
    print(
        f"\none collect() tick over {args.ticks} ticks: mean {statistics.fmean(ms):.2f} ms, "
        f"p95 {p95(ms):.2f} ms, max {max(ms):.2f} ms "
        f"({statistics.fmean(ms) / (DEFAULT_INTERVAL_SECONDS * 1000) * 100:.3f} % of the {DEFAULT_INTERVAL_SECONDS:g} s interval)"
    )
    print("mean cost per NVML call inside a tick (calls per tick x mean ms = ms per tick):")
    per_call = sorted(timed.seconds.items(), key=lambda kv: -sum(kv[1]))
    for name, seconds in per_call:
        if name in ("nvmlInit", "nvmlShutdown", "nvmlEventSetCreate", "nvmlDeviceRegisterEvents", "nvmlEventSetFree"):
            continue
        calls = len(seconds) / args.ticks
        mean_ms = statistics.fmean(seconds) * 1000
        print(f"   {name:45} {calls:5.1f} x {mean_ms:8.3f} ms = {calls * mean_ms:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
