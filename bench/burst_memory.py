"""Resident memory during a one-million-record burst while the store is down.

The store is a ClickHouse server DSN on a closed local port, so every insert fails at once (a real
"connection refused"). Records must go to the bounded queue and then the on-disk spool, never pile up
in RAM. Samples RSS every 20 ms from /proc and prints the peak growth over the level before the burst,
with the pipeline counters (what was spooled and what the bounded queue had to drop, counted).
Target: growth < 150 MB.

    python bench/burst_memory.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import threading
import time

from llmpulse import agent

RESPONSE = {
    "id": "chatcmpl-burst",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler(threading.Thread):
    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak = rss_bytes()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    spool = tempfile.mkdtemp(prefix="llmpulse-burst-")
    agent.configure("http://default:pw@127.0.0.1:1/llmpulse", spool_dir=spool, service_name="burst")

    @agent.observe
    def chat(model: str, messages: list) -> dict:
        return RESPONSE

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    for _ in range(2000):  # warm up code paths and the spool
        chat("gpt-4o-mini", messages)
    agent.flush(30)
    gc.collect()
    before = rss_bytes()
    sampler = PeakSampler()
    sampler.start()
    started = time.perf_counter()
    for _ in range(args.records):
        chat("gpt-4o-mini", messages)
    burst_s = time.perf_counter() - started
    agent.flush(600)
    drained_s = time.perf_counter() - started
    peak = sampler.stop()
    stats = agent.stats()
    spool_mb = (
        stats.spool_files
        and sum(os.path.getsize(os.path.join(spool, f)) for f in os.listdir(spool) if f.endswith(".json")) / 1e6
    )
    agent.shutdown(5)
    shutil.rmtree(spool, ignore_errors=True)

    print(f"burst: {args.records:,} calls in {burst_s:.1f} s; queue and spool drained after {drained_s:.1f} s")
    print(f"RSS before burst: {before / 1e6:.1f} MB, peak during: {peak / 1e6:.1f} MB")
    print(f"peak growth: {(peak - before) / 1e6:.1f} MB  (target < 150 MB)")
    print(
        f"records: enqueued {stats.enqueued:,}, spooled to disk {stats.spooled:,} ({spool_mb:.0f} MB in "
        f"{stats.spool_files} files), dropped {stats.dropped:,} {stats.dropped_by_reason}"
    )
    accounted = stats.spooled + stats.dropped + stats.exported
    print(f"accounted for: {accounted:,} of {args.records + 2000:,} records (warm-up included)")


if __name__ == "__main__":
    main()
