"""The sidecar calls every collector through one protocol (issue 12)."""

from __future__ import annotations

from datetime import datetime, timezone

from llmpulse.collectors.base import Collector
from llmpulse.collectors.gpu import GpuCollector
from llmpulse.collectors.serving import ServingScraper


def test_the_collectors_follow_the_protocol() -> None:
    gpu = GpuCollector(nvml=object())
    scraper = ServingScraper("http://127.0.0.1:9/metrics", fetch=lambda url, timeout: "")
    assert isinstance(gpu, Collector) and isinstance(scraper, Collector)
    assert gpu.failed_ticks == 0 and scraper.failed_ticks == 0


def test_a_failed_scrape_is_a_failed_tick() -> None:
    def down(url: str, timeout: float) -> str:
        raise ConnectionRefusedError("down")

    scraper = ServingScraper("http://127.0.0.1:9/metrics", fetch=down)
    assert scraper.collect(datetime.now(timezone.utc)) == {"serving_metrics": []}
    assert scraper.failed_ticks == scraper.scrape_errors == 1
    scraper.close()
