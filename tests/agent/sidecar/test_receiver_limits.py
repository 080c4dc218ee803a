"""Issue 10: what a client can make the sidecar hold is bounded, the token is kept secret, and values the
store cannot hold are refused at decode time (a 400 naming the field) instead of being acknowledged and lost.

Every test runs a real Sidecar on 127.0.0.1 with a chDB store; raw sockets play the misbehaving clients.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from llmpulse.agent.export.config import ConfigError
from llmpulse.agent.sidecar.config import build_sidecar_config
from llmpulse.agent.sidecar.receiver import RateLimitedLog
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .sidecar_harness import running_sidecar, wait_for

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TOKEN = "tok-3f9a1c77e2b54d0e"


@pytest.fixture
def schema(ch: Any, database: str) -> str:
    apply(ch, SchemaOptions(database=database))
    return database


def count(ch: Any, database: str, table: str, where: str = "1") -> int:
    return int(ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0])


def traces(spans: int, *, tag: int = 0, start: int | None = None, pad: int = 0) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    now = time.time_ns() if start is None else start
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id = tag.to_bytes(8, "big") + i.to_bytes(8, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = "limits"
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 1000
        if pad:
            attr = span.attributes.add()
            attr.key = "padding"
            attr.value.string_value = "x" * pad
    return request


def message(answer: Any) -> str:
    if answer.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(answer.data)["message"]
    return status_pb2.Status.FromString(answer.data).message


def _open(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(30)
    return conn


def _port(sidecar: Any) -> int:
    return int(sidecar.url.rsplit(":", 1)[1])


# --- in-flight bytes and connections (defects 13 and 2) ---------------------------------------------


def test_bodies_past_the_inflight_byte_cap_get_503_and_the_rest_is_stored(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    """Defect 13: 12 concurrent 63 MiB bodies took the agent to 1.39 GB. Two bodies fill the cap, a third waits."""
    body = traces(4, tag=1, pad=60_000).SerializeToString()
    limit = 2 * len(body) + 1000
    with running_sidecar(
        store_dsn, schema, tmp_path, max_body_bytes=len(body) + 10, max_inflight_bytes=limit
    ) as sidecar:
        stats = sidecar.sidecar.receiver.stats
        head = (
            f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        slow = [_open(_port(sidecar)) for _ in range(2)]
        for conn in slow:  # headers and half the body: each holds its whole length while it reads
            conn.sendall(head + body[: len(body) // 2])
        assert wait_for(lambda: stats.inflight_bytes == 2 * len(body))

        third = sidecar.post("/v1/traces", traces(4, tag=2).SerializeToString(), PROTOBUF)
        big_third = sidecar.post("/v1/traces", body, PROTOBUF)
        assert third.status == 200  # a small body still fits under the cap
        assert big_third.status == 503 and big_third.headers["Retry-After"] == "1"
        assert "retry later" in message(big_third)
        assert sidecar.metric("llmpulse_http_requests_total", path="/v1/traces", code="503") == 1

        for conn in slow:
            conn.sendall(body[len(body) // 2 :])
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            conn.close()
        assert wait_for(lambda: stats.inflight_bytes == 0)
        assert sidecar.post("/v1/traces", body, PROTOBUF).status == 200  # the retry goes through
        assert sidecar.get("/healthz").status == 200
        assert stats.inflight_bytes_peak <= limit
        assert sidecar.flush()
    assert count(ch, schema, "otel_traces") == 4 * 4  # two slow, the small one, the retry; nothing of the 503


def test_a_chunked_body_is_held_as_it_arrives_and_refused_past_the_cap(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    body = traces(3, tag=3, pad=50_000).SerializeToString()
    with running_sidecar(
        store_dsn, schema, tmp_path, max_body_bytes=len(body) + 10, max_inflight_bytes=len(body) + 10
    ) as sidecar:
        stats = sidecar.sidecar.receiver.stats
        conn = _open(_port(sidecar))
        half = body[: len(body) // 2]
        conn.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(half), half)
        )
        assert wait_for(lambda: stats.inflight_bytes == len(half))
        other = sidecar.post("/v1/traces", body, PROTOBUF)  # its length is known: refused before it is read
        assert other.status == 503
        rest = body[len(half) :]
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        conn.close()
        assert sidecar.flush()
    assert count(ch, schema, "otel_traces") == 3


def test_connections_past_the_cap_get_503_and_are_closed(store_dsn: str, schema: str, tmp_path: Path) -> None:
    """Defect 2: connections were never refused; about 325 idle ones exhausted a 256-descriptor limit."""
    with running_sidecar(store_dsn, schema, tmp_path, max_connections=4) as sidecar:
        stats = sidecar.sidecar.receiver.stats
        held = [_open(_port(sidecar)) for _ in range(4)]
        assert wait_for(lambda: stats.open_connections() == 4)
        extra = _open(_port(sidecar))
        answer = b""
        while chunk := extra.recv(4096):  # the agent answers and closes: recv returns b"" (a timeout raises)
            answer += chunk
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
        assert stats.connections_refused == 1
        for conn in held:
            conn.close()
        assert wait_for(lambda: stats.open_connections() == 0)
        assert sidecar.get("/healthz").status == 200
        assert sidecar.metric("llmpulse_refused_connections_total") == 1


def test_idle_connections_are_closed_after_the_idle_timeout_so_descriptors_come_back(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    """Defect 2: 40 idle connections against a cap of 16: the cap refuses some, the idle timeout closes the rest."""
    with running_sidecar(store_dsn, schema, tmp_path, max_connections=16, idle_timeout="0.3s") as sidecar:
        stats = sidecar.sidecar.receiver.stats
        idle = [_open(_port(sidecar)) for _ in range(40)]
        for conn in idle:
            while conn.recv(4096):  # every one is closed by the agent: a 503 first, or nothing at all
                pass
            conn.close()
        assert stats.connections_refused >= 40 - 16
        assert wait_for(lambda: stats.open_connections() == 0)
        assert sidecar.post("/v1/traces", traces(5, tag=4).SerializeToString(), PROTOBUF).status == 200
        assert sidecar.flush()
    assert count(ch, schema, "otel_traces") == 5


def test_a_trickled_body_is_cut_off_with_408(store_dsn: str, schema: str, tmp_path: Path, monkeypatch: Any) -> None:
    """A body that never finishes would hold its bytes against the cap for ever."""
    from llmpulse.agent.sidecar import receiver

    monkeypatch.setattr(receiver, "BODY_TIMEOUT_S", 0.3)
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        conn = _open(_port(sidecar))
        conn.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 1000\r\n\r\nabc"
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 408")
        conn.close()
        assert wait_for(lambda: sidecar.sidecar.receiver.stats.inflight_bytes == 0)


def test_the_inflight_cap_must_hold_one_largest_body() -> None:
    with pytest.raises(ConfigError, match=r"max_inflight_bytes .* must be at least max_body_bytes"):
        build_sidecar_config({"max_inflight_bytes": "1048576"}, environ={})
    with pytest.raises(ConfigError, match="max_connections"):
        build_sidecar_config({"max_connections": "0"}, environ={})


# --- rate-limited logs ---------------------------------------------------------------------------


def test_a_repeated_message_is_logged_once_per_interval_with_the_count_left_out(caplog: Any) -> None:
    log = RateLimitedLog(logging.getLogger("llmpulse.receiver"), interval=3600)
    with caplog.at_level(logging.INFO, logger="llmpulse.receiver"):
        logged = [log(("/v1/traces", 400), logging.INFO, "rejected %s", i) for i in range(100)]
        assert logged.count(True) == 1
        assert log(("/v1/traces", 415), logging.INFO, "other kind") is True  # its own key
        log.interval = 0  # the interval is over
        assert log(("/v1/traces", 400), logging.INFO, "rejected %s", 100) is True
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["rejected 0", "other kind", "rejected 100 (99 more like it in the last 0 s not logged)"]


def test_a_flood_of_bad_requests_writes_one_log_line(store_dsn: str, schema: str, tmp_path: Path, caplog: Any) -> None:
    """Defect 2: the agent's log grew 97 MB in 10 s."""
    from llmpulse.agent.sidecar.receiver import LOG_INTERVAL_S

    with caplog.at_level(logging.INFO, logger="llmpulse"):
        with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
            started = time.monotonic()
            for _ in range(200):
                assert sidecar.post("/v1/traces", b"\xff not protobuf", PROTOBUF).status == 400
            intervals = 1 + int((time.monotonic() - started) // LOG_INTERVAL_S)  # 1 unless the machine crawls
            assert sidecar.metric("llmpulse_http_requests_total", path="/v1/traces", code="400") == 200
    rejected = [r for r in caplog.records if "rejected /v1/traces with 400" in r.getMessage()]
    assert 1 <= len(rejected) <= intervals


# --- auth (defect 6) -------------------------------------------------------------------------------


def test_the_token_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert build_sidecar_config({"auth_token_file": str(path)}, environ={}).auth_token == TOKEN
    from_env = build_sidecar_config({}, environ={"LLMPULSE_AGENT_TOKEN_FILE": str(path)})
    assert from_env.auth_token == TOKEN
    assert build_sidecar_config({}, environ={"LLMPULSE_AGENT_TOKEN": TOKEN}).auth_token == TOKEN
    with pytest.raises(ConfigError, match="not both"):
        build_sidecar_config({"auth_token_file": str(path)}, environ={"LLMPULSE_AGENT_TOKEN": TOKEN})


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "cannot be read: No such file"), ("", "non-empty"), (f"{TOKEN} {TOKEN}", "non-empty token without spaces")],
)
def test_a_bad_token_file_is_named_and_its_content_never_shown(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match) as error:
        build_sidecar_config({"auth_token_file": str(path)}, environ={})
    assert TOKEN not in str(error.value)
    assert "auth_token_file (from --auth-token-file)" in str(error.value)


def test_the_cli_takes_a_bare_metrics_without_auth_flag_and_the_token_file() -> None:
    import argparse

    from llmpulse.agent.cli import agent_verb as sidecar_cli

    parser = argparse.ArgumentParser()
    sidecar_cli.register(parser.add_subparsers())
    args = parser.parse_args(["agent", "--metrics-without-auth", "--auth-token-file", "/run/secrets/t"])
    assert (args.metrics_without_auth, args.auth_token_file) == ("true", "/run/secrets/t")
    assert parser.parse_args(["agent", "--metrics-without-auth", "false"]).metrics_without_auth == "false"
    assert parser.parse_args(["agent"]).metrics_without_auth is None


def test_metrics_without_auth_opens_only_metrics(store_dsn: str, schema: str, tmp_path: Path) -> None:
    with running_sidecar(store_dsn, schema, tmp_path, auth_token=TOKEN, metrics_without_auth="true") as sidecar:
        assert sidecar.get("/metrics").status == 200
        assert sidecar.get("/healthz").status == 200
        for path in ("/readyz", "/dashboard"):
            assert sidecar.get(path).status == 401, path
        body = traces(1, tag=5).SerializeToString()
        assert sidecar.post("/v1/traces", body, PROTOBUF).status == 401
        assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Authorization": f"Bearer {TOKEN}"}).status == 200


def test_a_token_on_the_command_line_warns_and_no_log_shows_it(
    store_dsn: str, schema: str, tmp_path: Path, caplog: Any
) -> None:
    from llmpulse.agent._log import once_filter

    once_filter.reset()  # the SDK logger shows each warning once per process; an earlier test may have had it
    with caplog.at_level(logging.DEBUG, logger="llmpulse"):
        with running_sidecar(store_dsn, schema, tmp_path, auth_token=TOKEN) as sidecar:  # given as a flag
            body = traces(1, tag=6).SerializeToString()
            assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Authorization": f"Bearer {TOKEN}x"}).status == 401
            assert sidecar.post("/v1/traces", b"junk", {**PROTOBUF, "Authorization": f"Bearer {TOKEN}"}).status == 400
    messages = [r.getMessage() for r in caplog.records]
    assert any("--auth-token on the command line is visible" in m and "--auth-token-file" in m for m in messages)
    assert not any(TOKEN in m for m in messages)


def test_a_token_from_a_file_does_not_warn(store_dsn: str, schema: str, tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    with caplog.at_level(logging.WARNING, logger="llmpulse"):
        with running_sidecar(store_dsn, schema, tmp_path, auth_token_file=str(path)) as sidecar:
            headers = {**PROTOBUF, "Authorization": f"bearer {TOKEN}"}
            assert sidecar.post("/v1/traces", traces(1, tag=7).SerializeToString(), headers).status == 200
    assert not any("command line" in r.getMessage() for r in caplog.records)


def test_unknown_paths_share_one_metrics_label(store_dsn: str, schema: str, tmp_path: Path) -> None:
    """A client must not grow llmpulse_http_requests_total with a label per path it makes up."""
    with running_sidecar(store_dsn, schema, tmp_path, auth_token=TOKEN) as sidecar:
        for i in range(20):
            assert sidecar.get(f"/made-up-{i}").status == 401
        keys = {path for path, _status in sidecar.sidecar.receiver.stats.requests}
    assert keys == {"other"}


# --- values the store cannot hold (defect 1, item "failure isolation") -------------------------------

LATE_2100 = 4_102_444_800 * 10**9  # 2100-01-01T00:00:00Z, the latest row time taken


def _json_span(trace_byte: int, **fields: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": f"{trace_byte:02x}" * 16,
        "spanId": "ab" * 8,
        "name": "range",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1000),
        **fields,
    }


def _json_traces(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


def test_span_starts_past_2100_are_refused_naming_the_field(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    """A start in 2106-2262 fits DateTime64(9), but the TTL's toDateTime() wraps to 1970: it was 200 and then gone."""
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        for late in (LATE_2100 + 1, 2**32 * 10**9 - 1, 7_258_118_400 * 10**9):
            span = _json_span(1, startTimeUnixNano=str(late), endTimeUnixNano=str(late))
            answer = sidecar.post("/v1/traces", _json_traces(span), JSON)
            assert answer.status == 400
            assert "spans[0]: startTimeUnixNano" in message(answer) and "2100-01-01" in message(answer)
        edge = _json_span(2, startTimeUnixNano=str(LATE_2100), endTimeUnixNano=str(LATE_2100 + 5))
        assert sidecar.post("/v1/traces", _json_traces(edge), JSON).status == 200
        assert sidecar.flush()
    assert count(ch, schema, "otel_traces") == 1


def test_strings_that_are_not_utf8_are_refused_and_nul_is_kept(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    request = traces(1, tag=8)
    bad = request.SerializeToString().replace(b"limits", b"li\xffits")
    request.resource_spans[0].scope_spans[0].spans[0].name = "nul\x00inside"
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        assert sidecar.post("/v1/traces", bad, PROTOBUF).status == 400
        surrogate = _json_traces(_json_span(9, name="x")).replace(b'"x"', b'"\\ud800"')
        answer = sidecar.post("/v1/traces", surrogate, JSON)
        assert answer.status == 400
        assert sidecar.post("/v1/traces", request.SerializeToString(), PROTOBUF).status == 200
        assert sidecar.flush()
    assert ch.query(f"SELECT SpanName FROM {schema}.otel_traces").result_rows == [("nul\x00inside",)]


def test_non_finite_attribute_doubles_are_stored_as_the_collector_writes_them(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    """JSON has no NaN: the row encoder wrote null, stored as ''."""
    request = traces(3, tag=10)
    for span, value in zip(
        request.resource_spans[0].scope_spans[0].spans, (math.nan, math.inf, -math.inf), strict=True
    ):
        attr = span.attributes.add()
        attr.key = "gen_ai.request.temperature"
        attr.value.double_value = value
        event = span.events.add()
        event.time_unix_nano = span.start_time_unix_nano
        event.name = "e"
        nested = event.attributes.add()
        nested.key = "scores"
        nested.value.array_value.values.add().double_value = value
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        assert sidecar.post("/v1/traces", request.SerializeToString(), PROTOBUF).status == 200
        assert sidecar.flush()
    rows = ch.query(
        f"SELECT SpanAttributes['gen_ai.request.temperature'], Events.Attributes[1]['scores'] "
        f"FROM {schema}.otel_traces ORDER BY SpanId"
    ).result_rows
    assert rows == [("NaN", '["NaN"]'), ("+Inf", '["+Inf"]'), ("-Inf", '["-Inf"]')]


def _metrics(kind: str, **point_fields: Any) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = f"range.{kind}"
    point = getattr(metric, kind).data_points.add()
    now = time.time_ns()
    point.time_unix_nano = point.start_time_unix_nano = now
    for name, value in point_fields.items():
        if name == "exemplar_time":
            exemplar = point.exemplars.add()
            exemplar.time_unix_nano = value
            exemplar.as_double = 1.0
        elif name == "quantile":
            q = point.quantile_values.add()
            q.quantile = q.value = value
        elif name == "bound":
            point.explicit_bounds.append(value)
            point.bucket_counts.extend([0, 0])
        else:
            setattr(point, name, value)
    return request


@pytest.mark.parametrize(
    ("kind", "fields", "where"),
    [
        ("gauge", {"time_unix_nano": LATE_2100 + 1}, "metrics[0].gauge.dataPoints[0]: timeUnixNano"),
        ("sum", {"time_unix_nano": 2**63 + 1}, "metrics[0].sum.dataPoints[0]: timeUnixNano"),
        ("gauge", {"start_time_unix_nano": 2**64 - 1}, "gauge.dataPoints[0]: startTimeUnixNano"),
        ("histogram", {"exemplar_time": 2**63}, "histogram.dataPoints[0].exemplars[0]: timeUnixNano"),
        ("exponential_histogram", {"start_time_unix_nano": LATE_2100 + 1}, "exponentialHistogram.dataPoints[0]"),
        ("exponential_histogram", {"exemplar_time": 2**33 * 10**9}, "exponentialHistogram.dataPoints[0].exemplars[0]"),
        ("summary", {"time_unix_nano": 2**64 - 1}, "summary.dataPoints[0]: timeUnixNano"),
    ],
)
def test_metric_times_the_store_cannot_hold_are_refused_naming_the_field(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any, kind: str, fields: dict, where: str
) -> None:
    """ClickHouse refused these inserts (Decimal math overflow, "Cannot read DateTime"); they were answered 200."""
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        answer = sidecar.post("/v1/metrics", _metrics(kind, **fields).SerializeToString(), PROTOBUF)
        assert answer.status == 400
        assert where in message(answer)
        assert sidecar.flush()
    assert not list((tmp_path / "spool").glob("dead/*"))


def test_non_finite_metric_values_are_stored_as_nan_and_infinity(
    store_dsn: str, schema: str, tmp_path: Path, ch: Any
) -> None:
    """They were written as JSON null, which ClickHouse stores as 0: a NaN gauge read back as 0.0."""
    bodies = [
        _metrics("gauge", as_double=math.nan),
        _metrics("sum", as_double=-math.inf),
        _metrics("histogram", sum=math.inf, min=math.nan, max=math.inf, bound=math.nan),
        _metrics("exponential_histogram", sum=math.nan, min=-math.inf),
        _metrics("summary", sum=math.inf, quantile=math.nan),
    ]
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:
        for body in bodies:
            assert sidecar.post("/v1/metrics", body.SerializeToString(), PROTOBUF).status == 200
        assert sidecar.flush()

    def one(sql: str) -> tuple:
        return ch.query(sql.format(db=schema)).result_rows[0]

    assert one("SELECT isNaN(Value) FROM {db}.otel_metrics_gauge") == (1,)
    assert one("SELECT Value FROM {db}.otel_metrics_sum") == (-math.inf,)
    assert one("SELECT Sum, isNaN(Min), Max, isNaN(ExplicitBounds[1]) FROM {db}.otel_metrics_histogram") == (
        math.inf,
        1,
        math.inf,
        1,
    )
    assert one("SELECT isNaN(Sum), Min FROM {db}.otel_metrics_exp_histogram") == (1, -math.inf)
    assert one("SELECT Sum, isNaN(ValueAtQuantiles.Value[1]) FROM {db}.otel_metrics_summary") == (math.inf, 1)


def test_metrics_show_the_write_ahead_log_and_the_limits(store_dsn: str, schema: str, tmp_path: Path) -> None:
    with running_sidecar(store_dsn, schema, tmp_path) as sidecar:  # durable is on by default
        assert sidecar.post("/v1/traces", traces(3, tag=11).SerializeToString(), PROTOBUF).status == 200
        assert sidecar.flush()
        assert sidecar.metric("llmpulse_wal_records_total") >= 1  # data, seal and release records
        assert sidecar.metric("llmpulse_wal_written_bytes_total") > 0
        assert sidecar.metric("llmpulse_wal_fsyncs_total") >= 1
        assert sidecar.metric("llmpulse_wal_write_errors_total") == 0
        assert sidecar.metric("llmpulse_wal_replayed_records_total") == 0
        assert sidecar.metric("llmpulse_wal_replay_pending_records") == 0
        assert sidecar.metric("llmpulse_wal_bytes") >= 0
        assert sidecar.metric("llmpulse_open_connections") >= 1  # the scrape's own
        assert sidecar.metric("llmpulse_inflight_body_bytes") == 0
        assert sidecar.metric("llmpulse_inflight_body_bytes_peak") > 0
    with running_sidecar(store_dsn, schema, tmp_path, durable="false") as sidecar:
        with pytest.raises(KeyError):
            sidecar.metric("llmpulse_wal_bytes")
