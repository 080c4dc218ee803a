"""Calls with human feedback, read for training data and golden references (``llmpulse export feedback``).

A feedback row names a trace and maybe a span; the schema's rule (``feedback_on_calls``) gives the call
it is about: the call of that span, else the trace's last LLM call. The rule runs over every call of
the window (and service), then the template filter applies, so feedback on a whole trace goes to the
answer its user saw even when an earlier call of the trace used another template. System instructions
sent apart from the messages (Anthropic's ``system``, the Responses API's ``instructions``) are kept
only in ``otel_traces`` (``gen_ai.system_instructions``), which is read for the rated calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .contract import feedback_on_calls_sql


@dataclass(frozen=True)
class FeedbackEntry:
    """One feedback row on a call."""

    time: datetime
    name: str
    score: float | None
    label: str = ""
    comment: str = ""
    source: str = ""


@dataclass
class RatedCall:
    """An LLM call with the feedback it got, its captured content as stored (redacted at capture)."""

    trace_id: str
    span_id: str
    time: datetime
    service: str
    model: str
    prompt_template: str = ""
    prompt_version: str = ""
    session_id: str = ""
    user_id: str = ""
    status: str = ""
    input_messages: str = ""
    output_messages: str = ""
    system_instructions: str = ""
    prompt_text: str = ""
    response_text: str = ""
    context: str = ""
    feedback: list[FeedbackEntry] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """The mean of the feedback scores; None when the feedback has none (a label or a comment only)."""
        scores = [f.score for f in self.feedback if f.score is not None]
        return sum(scores) / len(scores) if scores else None


_WINDOW = "Timestamp >= fromUnixTimestamp64Nano({since:Int64}) AND Timestamp <= fromUnixTimestamp64Nano({until:Int64})"


def _calls_sql(service: str | None) -> str:
    only = " AND ServiceName = {service:String}" if service is not None else ""
    return f"SELECT TraceId, SpanId, Timestamp FROM {{db:Identifier}}.llm_calls WHERE {_WINDOW}{only}"


def rated_calls_sql(service: str | None, prompt_template: str | None) -> str:
    """The SQL of :func:`read_rated_calls`: placeholders for every value."""
    feedback = feedback_on_calls_sql(_calls_sql(service), "{db:Identifier}.feedback")
    only = " AND c.ServiceName = {service:String}" if service is not None else ""
    template = " AND c.PromptTemplate = {template:String}" if prompt_template is not None else ""
    return f"""SELECT c.TraceId, c.SpanId, c.Timestamp, c.ServiceName, c.RequestModel, c.PromptTemplate,
    c.PromptVersion, c.SessionId, c.UserId, c.StatusCode, c.InputMessages, c.OutputMessages, ifNull(s.system, ''),
    c.PromptText, c.ResponseText, c.Context, fb.entries
FROM {{db:Identifier}}.llm_calls AS c
INNER JOIN (
    SELECT TraceId, SpanId, groupArray((FeedbackTime, Name, Score, Label, Comment, Source)) AS entries
    FROM ({feedback}) GROUP BY TraceId, SpanId
) AS fb ON fb.TraceId = c.TraceId AND fb.SpanId = c.SpanId
LEFT JOIN (
    SELECT TraceId, SpanId, any(SpanAttributes['gen_ai.system_instructions']) AS system
    FROM {{db:Identifier}}.otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({{since:Int64}})
        AND mapContains(SpanAttributes, 'gen_ai.system_instructions')
        AND TraceId IN (SELECT TraceId FROM ({feedback}))
    GROUP BY TraceId, SpanId
) AS s ON s.TraceId = c.TraceId AND s.SpanId = c.SpanId
WHERE c.{_WINDOW.replace(" AND Timestamp", " AND c.Timestamp")}{only}{template}
ORDER BY c.Timestamp, c.SpanId"""


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _parameters(database: str, since: datetime, until: datetime, **values: str | None) -> dict[str, Any]:
    return {"db": database, "since": _ns(since), "until": _ns(until), **{k: v or "" for k, v in values.items()}}


def read_rated_calls(
    client: Any,
    database: str,
    *,
    since: datetime,
    until: datetime,
    service: str | None = None,
    prompt_template: str | None = None,
) -> list[RatedCall]:
    """Every call of ``[since, until]`` that has feedback, oldest first (filters as bound parameters)."""
    parameters = _parameters(database, since, until, service=service, template=prompt_template)
    rows = client.query(rated_calls_sql(service, prompt_template), parameters=parameters).result_rows
    return [_call(row) for row in rows]


def count_calls(
    client: Any, database: str, *, since: datetime, until: datetime, service: str | None = None
) -> tuple[int, int]:
    """(calls in the window, feedback rows on them): what an empty export reports."""
    calls = _calls_sql(service)
    feedback = feedback_on_calls_sql(calls, "{db:Identifier}.feedback")
    row = client.query(
        f"SELECT (SELECT count() FROM ({calls})), (SELECT count() FROM ({feedback}))",
        parameters=_parameters(database, since, until, service=service),
    ).result_rows[0]
    return int(row[0]), int(row[1])


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _call(row: tuple[Any, ...]) -> RatedCall:
    (trace, span, at, service, model, template, version, session, user, status, inputs, outputs, system) = row[:13]
    prompt, response, context, entries = row[13:]
    feedback = [
        FeedbackEntry(time=_utc(t), name=str(n), score=s, label=str(label), comment=str(c), source=str(src))
        for t, n, s, label, c, src in sorted(entries, key=lambda e: e[0])
    ]
    return RatedCall(
        trace_id=trace,
        span_id=span,
        time=_utc(at),
        service=str(service),
        model=str(model),
        prompt_template=str(template),
        prompt_version=str(version),
        session_id=session,
        user_id=user,
        status=str(status),
        input_messages=inputs,
        output_messages=outputs,
        system_instructions=system,
        prompt_text=prompt,
        response_text=response,
        context=context,
        feedback=feedback,
    )
