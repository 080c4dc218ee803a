"""Serving-engine scraper against exposition text of vLLM (current and deprecated names) and TGI."""

from __future__ import annotations

import http.server
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from llmpulse.collectors.serving import (
    SERVING_COLUMNS,
    ServingParseError,
    ServingScraper,
    parse_exposition,
)

from .store_rows import create_schema, insert_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "serving"
NOW = datetime.now(timezone.utc).replace(microsecond=0)  # recent: older rows fall to the TTL on insert
URL = "http://vllm.local:8000/metrics"
TTFT_BOUNDS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TTFT_BOUNDS_V1 = [*TTFT_BOUNDS, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def by_metric(rows: list[dict], metric: str) -> list[dict]:
    return [r for r in rows if r["Metric"] == metric]


def one(rows: list[dict], metric: str) -> dict:
    (row,) = by_metric(rows, metric)
    return row


class Pages:
    """A fetch that serves the given pages in turn (the seam; the real urllib fetch is tested below)."""

    def __init__(self, *names: str) -> None:
        self.pages = [text(n) for n in names]
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> str:
        self.urls.append(url)
        return self.pages.pop(0)


def test_vllm_current_names() -> None:
    rows = parse_exposition(text("vllm_v0_11_scrape1.txt"))
    assert {r["Engine"] for r in rows} == {"vllm"}
    assert {r["ModelName"] for r in rows} == {"meta-llama/Llama-3.1-8B-Instruct"}
    kv = one(rows, "kv_cache_usage_ratio")
    assert (kv["MetricName"], kv["MetricType"], kv["Value"], kv["Labels"]) == (
        "vllm:kv_cache_usage_perc",
        "gauge",
        0.4375,
        {"engine": "0"},
    )
    assert one(rows, "requests_running")["Value"] == 7.0 and one(rows, "requests_waiting")["Value"] == 2.0
    assert one(rows, "generation_tokens")["MetricType"] == "counter"
    assert one(rows, "preemptions")["Value"] == 3.0
    finished = {r["Labels"]["finished_reason"]: r["Value"] for r in by_metric(rows, "requests_finished")}
    assert finished == {"stop": 1180.0, "length": 52.0, "abort": 4.0}

    ttft = one(rows, "ttft_seconds")
    assert ttft["MetricType"] == "histogram" and ttft["BucketBounds"] == TTFT_BOUNDS_V1
    assert ttft["HistogramCount"] == 1240.0 and ttft["HistogramSum"] == pytest.approx(138.88)
    counts = ttft["BucketCounts"]
    assert len(counts) == len(TTFT_BOUNDS_V1) and counts == sorted(counts) and counts[-1] <= 1240.0
    # 0.11 still shows the deprecated time_per_output_token next to inter_token_latency: only the new one is kept
    itl = one(rows, "inter_token_latency_seconds")
    assert itl["MetricName"] == "vllm:inter_token_latency_seconds"
    assert "vllm:time_per_output_token_seconds" not in {r["MetricName"] for r in rows}
    assert "vllm:iteration_tokens_total" not in {r["MetricName"] for r in rows}  # not a series we keep


def test_vllm_deprecated_names_fall_back() -> None:
    rows = parse_exposition(text("vllm_v0_5_3_deprecated_names.txt"))
    kv = one(rows, "kv_cache_usage_ratio")
    assert (kv["MetricName"], kv["Value"], kv["Labels"]) == ("vllm:gpu_cache_usage_perc", 0.9160722, {})
    itl = one(rows, "inter_token_latency_seconds")
    assert itl["MetricName"] == "vllm:time_per_output_token_seconds" and itl["HistogramCount"] == 1938674.0
    ttft = one(rows, "ttft_seconds")
    assert ttft["HistogramCount"] == 8060.0 and ttft["BucketBounds"] == TTFT_BOUNDS  # issue #8115's count
    finished = {r["Labels"]["finished_reason"]: r["Value"] for r in by_metric(rows, "requests_finished")}
    assert finished == {"stop": 3810.0, "length": 108.0}
    assert one(rows, "requests_swapped")["Value"] == 0.0
    assert {r["ModelName"] for r in rows} == {"meta-llama/Meta-Llama-3-70B-Instruct"}


def test_tgi() -> None:
    rows = parse_exposition(text("tgi_3_3_scrape1.txt"))
    assert {r["Engine"] for r in rows} == {"tgi"} and {r["ModelName"] for r in rows} == {""}
    assert one(rows, "requests_waiting")["Value"] == 3.0 and one(rows, "requests_running")["Value"] == 8.0
    requests = one(rows, "requests")
    assert (requests["MetricName"], requests["MetricType"], requests["Value"]) == ("tgi_request_count", "counter", 2087)
    failed = {r["Labels"]["err"]: r["Value"] for r in by_metric(rows, "requests_failed")}
    assert failed == {"overloaded": 9.0, "validation": 4.0}
    latency = one(rows, "request_latency_seconds")
    assert len(latency["BucketBounds"]) == 35 and latency["BucketBounds"][0] == pytest.approx(0.00015)
    assert latency["HistogramCount"] == 2071.0
    prefill = one(rows, "batch_inference_seconds")
    assert prefill["Labels"] == {"method": "prefill"}


def test_engine_detection_and_errors() -> None:
    with pytest.raises(ServingParseError, match=r"no vllm metrics on the page \(the page looks like tgi\)"):
        parse_exposition(text("tgi_3_3_scrape1.txt"), "vllm")
    with pytest.raises(ServingParseError, match="not a Prometheus text exposition"):
        parse_exposition("<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ServingParseError, match=r"no vLLM \(vllm:\*\) or TGI \(tgi_\*\) metrics on the page"):
        parse_exposition("# HELP up whatever\n# TYPE up gauge\nup 1\n")
    with pytest.raises(ValueError, match="engine must be one of auto, vllm, tgi, got 'sglang'"):
        parse_exposition("", "sglang")


def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="serving engine must be one of auto, vllm, tgi, got 'triton'"):
        ServingScraper(URL, engine="triton")
    with pytest.raises(ValueError, match="must start with http:// or https://, got 'localhost:8000/metrics'"):
        ServingScraper("localhost:8000/metrics")
    with pytest.raises(ValueError, match="timeout must be > 0 seconds"):
        ServingScraper(URL, timeout=0)


def test_missing_prometheus_client_is_a_configuration_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ValueError, match=r"needs prometheus-client: pip install 'llmpulse\[sidecar\]'"):
        ServingScraper(URL)


def test_increases_between_scrapes_and_after_a_restart() -> None:
    pages = Pages("vllm_v0_11_scrape1.txt", "vllm_v0_11_scrape2.txt", "vllm_v0_11_scrape3.txt")
    scraper = ServingScraper(URL, fetch=pages, hostname="gpu-node-1")
    first = scraper.collect(NOW)["serving_metrics"]
    assert all(tuple(r) == SERVING_COLUMNS for r in first)
    assert {(r["Timestamp"], r["Hostname"], r["Endpoint"]) for r in first} == {(NOW, "gpu-node-1", URL)}
    tokens = one(first, "generation_tokens")
    assert tokens["Value"] == 421987.0 and tokens["Increase"] is None  # nothing to subtract yet
    assert one(first, "ttft_seconds")["BucketIncreases"] == []

    second = scraper.collect(NOW + timedelta(seconds=5))["serving_metrics"]
    assert one(second, "generation_tokens")["Increase"] == 423517.0 - 421987.0
    assert one(second, "kv_cache_usage_ratio")["Increase"] is None  # gauges have no increase
    ttft1, ttft2 = one(first, "ttft_seconds"), one(second, "ttft_seconds")
    assert ttft2["CountIncrease"] == 8.0
    assert ttft2["SumIncrease"] == pytest.approx(ttft2["HistogramSum"] - ttft1["HistogramSum"])
    assert ttft2["BucketIncreases"] == [
        b - a for a, b in zip(ttft1["BucketCounts"], ttft2["BucketCounts"], strict=True)
    ]
    stop = [r for r in by_metric(second, "requests_finished") if r["Labels"]["finished_reason"] == "stop"]
    assert stop[0]["Increase"] == 6.0

    restarted = scraper.collect(NOW + timedelta(seconds=10))["serving_metrics"]
    assert one(restarted, "generation_tokens")["Increase"] == 37.0  # counter went back: the new value
    ttft3 = one(restarted, "ttft_seconds")
    assert ttft3["CountIncrease"] == 2.0 and ttft3["BucketIncreases"] == ttft3["BucketCounts"]
    assert scraper.scrape_errors == 0 and pages.urls == [URL] * 3


def test_tgi_rows_take_the_configured_model_name() -> None:
    scraper = ServingScraper(URL, fetch=Pages("tgi_3_3_scrape1.txt"), model_name="mistralai/Mistral-7B-v0.3")
    rows = scraper.collect(NOW)["serving_metrics"]
    assert {r["ModelName"] for r in rows} == {"mistralai/Mistral-7B-v0.3"}


def test_unreachable_endpoint_and_garbage_are_logged_not_raised(caplog) -> None:
    calls = {"n": 0}

    def flaky(url: str, timeout: float) -> str:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionRefusedError(111, "Connection refused")
        if calls["n"] == 4:
            return "<html>502 Bad Gateway</html>"
        return text("vllm_v0_11_scrape1.txt")

    scraper = ServingScraper(URL, fetch=flaky)
    with caplog.at_level(logging.WARNING, logger="llmpulse.collectors.serving"):
        for _ in range(3):
            assert scraper.collect(NOW) == {"serving_metrics": []}
        assert scraper.collect(NOW) == {"serving_metrics": []}
        assert scraper.collect(NOW)["serving_metrics"]
    messages = [r.getMessage() for r in caplog.records]
    assert scraper.scrape_errors == 4 and scraper.last_error is None
    assert messages == [
        f"cannot scrape {URL}: ConnectionRefusedError: [Errno 111] Connection refused (no serving metrics this tick)",
        f"cannot read {URL}: not a Prometheus text exposition: invalid metric name:<html>502 Bad Gateway</html> "
        "(no serving metrics this tick)",
        f"serving metrics from {URL} are back",
    ]


@pytest.fixture
def metrics_server() -> Iterator[str]:
    body = text("vllm_v0_5_3_deprecated_names.txt").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()
    thread.join()


def test_real_http_fetch(metrics_server: str) -> None:
    rows = ServingScraper(metrics_server, timeout=5).collect(NOW)["serving_metrics"]
    assert one(rows, "kv_cache_usage_ratio")["Value"] == 0.9160722


def test_real_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the scrape: nothing listens there
    scraper = ServingScraper(f"http://127.0.0.1:{port}/metrics", timeout=2)
    assert scraper.collect(NOW) == {"serving_metrics": []}
    assert scraper.scrape_errors == 1 and "cannot scrape" in scraper.last_error


def _histogram_quantile(bounds: list[float], cumulative: list[float], total: float, q: float) -> float:
    """Prometheus' histogram_quantile, written out independently of the SQL view."""
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return bounds[-1]


def _quantiles(ch, database: str, q: float, start: datetime, end: datetime) -> dict[tuple[str, str], float]:
    result = ch.query(
        f"SELECT Metric, Engine, Quantile FROM {database}.serving_histogram_quantile("
        "q={q:Float64}, start_ms={s:Int64}, end_ms={e:Int64})",
        parameters={"q": q, "s": int(start.timestamp() * 1000), "e": int(end.timestamp() * 1000)},
    )
    return {(m, e): v for m, e, v in result.result_rows}


def test_end_to_end_kv_cache_over_time_and_ttft_quantile(ch, database) -> None:
    create_schema(ch, database)
    scraper = ServingScraper(URL, fetch=Pages("vllm_v0_11_scrape1.txt", "vllm_v0_11_scrape2.txt"), hostname="h1")
    scrapes = [scraper.collect(NOW + timedelta(seconds=5 * i))["serving_metrics"] for i in range(2)]
    for rows in scrapes:
        insert_rows(ch, database, "serving_metrics", rows)

    kv = ch.query(
        f"SELECT Timestamp, Value FROM {database}.serving_metrics "
        "WHERE Metric = 'kv_cache_usage_ratio' AND ModelName = {m:String} ORDER BY Timestamp",
        parameters={"m": "meta-llama/Llama-3.1-8B-Instruct"},
    ).result_rows
    assert [v for _, v in kv] == [0.4375, 0.5625]
    assert [t.replace(tzinfo=timezone.utc) for t, _ in kv] == [NOW, NOW + timedelta(seconds=5)]

    ttft1, ttft2 = one(scrapes[0], "ttft_seconds"), one(scrapes[1], "ttft_seconds")
    deltas = [b - a for a, b in zip(ttft1["BucketCounts"], ttft2["BucketCounts"], strict=True)]
    expected = _histogram_quantile(ttft2["BucketBounds"], deltas, 8.0, 0.95)
    stored = _quantiles(ch, database, 0.95, NOW - timedelta(seconds=1), NOW + timedelta(seconds=10))
    assert stored[("ttft_seconds", "vllm")] == pytest.approx(expected, rel=1e-12)


def test_quantile_view_on_a_known_histogram(ch, database) -> None:
    """Bounds 0.1/0.5/1.0, cumulative increases 2/6/9 of 10 observations (one above 1.0).

    p50: rank 5 falls in (0.1, 0.5] holding observations 3..6 -> 0.1 + 0.4 * (5 - 2) / (6 - 2) = 0.4.
    p95: rank 9.5 is above every finite bucket -> the highest finite bound, 1.0.
    """
    create_schema(ch, database)
    base = {column: None for column in SERVING_COLUMNS}
    row = {
        **base,
        "Timestamp": NOW,
        "Hostname": "h1",
        "Endpoint": URL,
        "Engine": "vllm",
        "ModelName": "m",
        "Metric": "ttft_seconds",
        "MetricName": "vllm:time_to_first_token_seconds",
        "MetricType": "histogram",
        "Labels": {},
        "HistogramCount": 10.0,
        "CountIncrease": 10.0,
        "BucketBounds": [0.1, 0.5, 1.0],
        "BucketCounts": [2.0, 6.0, 9.0],
        "BucketIncreases": [2.0, 6.0, 9.0],
    }
    insert_rows(ch, database, "serving_metrics", [row])
    window = (NOW - timedelta(seconds=1), NOW + timedelta(seconds=1))
    assert _quantiles(ch, database, 0.5, *window)[("ttft_seconds", "vllm")] == pytest.approx(0.4)
    assert _quantiles(ch, database, 0.95, *window)[("ttft_seconds", "vllm")] == pytest.approx(1.0)
    assert _histogram_quantile([0.1, 0.5, 1.0], [2.0, 6.0, 9.0], 10.0, 0.5) == pytest.approx(0.4)
