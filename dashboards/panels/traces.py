"""The Traces dashboard: the slowest traces and the plugin's trace view of one, and the link that opens it."""

from __future__ import annotations

from llmpulse.dashboards.model import Dashboard, Link, Panel, Variable

from .variables import IN_SERVICE

TRACES_UID = "llmpulse-traces"
TRACE_LINK = Link(
    column="trace_id",
    title="Open trace",
    url=f"/d/{TRACES_UID}/?var-trace_id=${{__value.raw}}&${{__url_time_range}}",
)

TRACE_SERVICE = Variable(
    "service",
    "Service",
    sql="SELECT DISTINCT ServiceName FROM otel_traces WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
)
TRACE_ID = Variable(
    "trace_id", "Trace ID", kind="textbox", description="Trace to show (click a trace id in a table to set it)"
)

# The plugin's own trace-id query (src/data/sqlGenerator.ts generateTraceIdQuery with the
# <table>_trace_id_ts lookup), with the OTel column names of otel_traces. The typed trace id reaches the
# SQL percent-encoded (nothing in it can end the string) and counts only as 32 lowercase hex digits.
TRACE_SQL = (
    "WITH decodeURLComponent('${trace_id:percentencode}') AS __gf_trace_input,"
    " if(match(__gf_trace_input, '^[0-9a-f]{32}$'), __gf_trace_input, '') AS __gf_trace_id,"
    " (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_start,"
    " (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_end"
    " SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,"
    " SpanName AS operationName, multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,"
    " multiply(Duration, 0.000001) AS duration,"
    " arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,"
    " arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,"
    " if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode, SpanKind AS kind,"
    " StatusMessage AS statusMessage, ScopeName AS instrumentationLibraryName,"
    " ScopeVersion AS instrumentationLibraryVersion, TraceState AS traceState,"
    " arrayMap((name, timestamp, attributes) -> CAST(tuple(name, toString(toUnixTimestamp64Milli(timestamp)),"
    " arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes))),"
    " 'Tuple(name String, timestamp String, fields Array(Map(String, String)))'),"
    " Events.Name, Events.Timestamp, Events.Attributes) AS logs"
    " FROM otel_traces WHERE traceID = __gf_trace_id AND Timestamp >= __gf_trace_start"
    " AND Timestamp <= __gf_trace_end ORDER BY startTime ASC"
)

TRACES = Dashboard(
    uid=TRACES_UID,
    title="llmpulse / Traces",
    description="Spans in otel_traces: the slowest traces and the plugin's trace view of one trace.",
    data_times=("otel_traces.Timestamp",),
    variables=(TRACE_SERVICE, TRACE_ID),
    items=(
        Panel(
            key="slowest_traces",
            title="Slowest traces",
            sql=(
                "SELECT TraceId AS trace_id, min(Timestamp) AS start, any(ServiceName) AS service,"
                " argMin(SpanName, Timestamp) AS root_span, count() AS spans,"
                " (max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp))) / 1e9"
                " AS duration_s, countIf(StatusCode = 'Error') AS errors FROM otel_traces"
                f" WHERE $__timeFilter(Timestamp) AND {IN_SERVICE}"
                " AND TraceId != '' GROUP BY trace_id ORDER BY duration_s DESC LIMIT 50"
            ),
            visualization="table",
            columns=("trace_id", "start", "service", "root_span", "spans", "duration_s", "errors"),
            description="The 50 longest traces; click a trace id to show it below.",
            column_units=(("duration_s", "s"),),
            links=(TRACE_LINK,),
            width=14,
            height=9,
        ),
        Panel(
            key="spans_per_second",
            title="Spans per second by service",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, ServiceName AS service, count() / $__interval_s AS spans"
                " FROM otel_traces WHERE $__timeFilter(Timestamp)"
                f" AND {IN_SERVICE} GROUP BY time, service ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "service", "spans"),
            unit="short",
            description="Spans stored per second.",
            width=10,
            height=9,
        ),
        Panel(
            key="trace_view",
            title="Trace",
            sql=TRACE_SQL,
            visualization="traces",
            columns=(
                "traceID",
                "spanID",
                "parentSpanID",
                "serviceName",
                "operationName",
                "startTime",
                "duration",
                "tags",
                "serviceTags",
                "statusCode",
            ),
            description="The trace named by the trace_id variable, in Grafana's trace view.",
            width=24,
            height=14,
        ),
    ),
)
