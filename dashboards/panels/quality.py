"""The Quality dashboard: drift tests, hallucination and prompt-injection rates, reference scores, feedback, alerts."""

from __future__ import annotations

from llmpulse.dashboards.model import Dashboard, Panel, Row

from .thresholds import GREEN, ORANGE, RED, steps
from .variables import CALL_VARIABLES, CALLS_FILTER, IN_SERVICE, one_of

IN_SEGMENT_SERVICE = one_of("Segment['service']", "service")
IN_SEGMENT_MODEL = one_of("Segment['model']", "model")
IN_SEGMENT_PROMPT_VERSION = one_of("Segment['prompt_version']", "prompt_version")
SEGMENT_FILTER = f"{IN_SEGMENT_SERVICE} AND {IN_SEGMENT_MODEL} AND {IN_SEGMENT_PROMPT_VERSION}"
SEGMENT_LABEL = "arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), mapKeys(Segment), mapValues(Segment)), ' ')"
SCORES_FILTER = CALLS_FILTER  # call_scores has the Timestamp, ServiceName, RequestModel and PromptVersion of llm_calls
SCORE_VERSION = (
    "multiIf(Version != '', Version, ModelVersion != '', concat('model ', ModelVersion),"
    " PromptVersion != '', concat('prompt ', PromptVersion), RequestModel)"
)
RATE_SCORERS = "('hallucination', 'injection')"


def _flag_rate(key: str, title: str, scorer: str, red: float) -> Panel:
    return Panel(
        key=key,
        title=title,
        sql=(
            "SELECT countIf(Flagged) / nullIf(count(), 0) AS flagged_rate FROM call_scores FINAL"
            f" WHERE {SCORES_FILTER} AND Scorer = '{scorer}'"
        ),
        visualization="stat",
        columns=("flagged_rate",),
        unit="percentunit",
        description=f"Share of scored calls the {scorer} scorer flagged over the time range.",
        thresholds=steps((red / 2, ORANGE), (red, RED)),
        width=6,
        height=4,
    )


QUALITY = Dashboard(
    uid="llmpulse-quality",
    title="llmpulse / Quality",
    description="Drift tests, hallucination and prompt-injection rates, reference scores and human feedback.",
    data_times=("llm_calls.Timestamp", "feedback.Timestamp", "analysis_results.WindowEnd", "alerts.Timestamp"),
    variables=CALL_VARIABLES,
    items=(
        Row("Drift"),
        Panel(
            key="drift_p_values",
            title="Drift p-values",
            sql=(
                f"SELECT WindowEnd AS time, concat(Metric, ' ', {SEGMENT_LABEL}) AS series, min(PValue) AS p_value"
                " FROM analysis_results WHERE $__timeFilter(WindowEnd) AND Analyzer = 'drift' AND Status = 'ok'"
                f" AND PValue IS NOT NULL AND {SEGMENT_FILTER} GROUP BY time, series ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "series", "p_value"),
            description="p-value of each drift test per window end; below the red line (alpha 0.05) is drift.",
            thresholds=steps((0.05, GREEN), base=RED),
            min=0,
            max=1,
            decimals=3,
        ),
        Panel(
            key="drift_magnitude",
            title="Drift magnitude",
            sql=(
                f"SELECT WindowEnd AS time, concat(Metric, ' ', {SEGMENT_LABEL}) AS series, max(Value) AS magnitude"
                " FROM analysis_results WHERE $__timeFilter(WindowEnd) AND Analyzer = 'drift' AND Status = 'ok'"
                f" AND Value IS NOT NULL AND {SEGMENT_FILTER} GROUP BY time, series ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "series", "magnitude"),
            description="Effect sizes of the drift tests (MMD², classifier AUC, centroid cosine distance).",
            decimals=3,
        ),
        Row("Alerts"),
        Panel(
            key="alerts_over_time",
            title="Analyzer alerts",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Analyzer AS analyzer, count() AS alerts FROM alerts"
                f" WHERE $__timeFilter(Timestamp) AND {SEGMENT_FILTER} GROUP BY time, analyzer ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "analyzer", "alerts"),
            description="Alerts raised by the analyzers per interval.",
            stacked=True,
            width=8,
        ),
        Panel(
            key="recent_alerts",
            title="Recent alerts",
            sql=(
                f"SELECT Timestamp AS time, Severity AS severity, Analyzer AS analyzer, Title AS title,"
                f" Message AS message, {SEGMENT_LABEL} AS segment, Value AS value, PValue AS p_value FROM alerts"
                f" WHERE $__timeFilter(Timestamp) AND {SEGMENT_FILTER} ORDER BY Timestamp DESC LIMIT 50"
            ),
            visualization="table",
            columns=("time", "severity", "analyzer", "title", "message"),
            description="The latest analyzer alerts with their test values.",
            width=16,
        ),
        Row("Hallucination and prompt injection"),
        _flag_rate("hallucination_rate", "Hallucination rate", "hallucination", 0.1),
        _flag_rate("injection_rate", "Prompt-injection rate", "injection", 0.05),
        Panel(
            key="flag_rates",
            title="Hallucination and prompt-injection rates",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Scorer AS scorer, countIf(Flagged) / count() AS flagged_rate"
                f" FROM call_scores FINAL WHERE {SCORES_FILTER} AND Scorer IN {RATE_SCORERS}"
                " GROUP BY time, scorer ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "scorer", "flagged_rate"),
            unit="percentunit",
            description="Share of calls flagged by the hallucination and prompt-injection scorers per interval.",
            min=0,
        ),
        Row("Reference scores and human feedback"),
        Panel(
            key="reference_scores_by_version",
            title="Reference score by version",
            sql=(
                f"SELECT {SCORE_VERSION} AS version, avg(Score) AS mean_score FROM call_scores FINAL"
                f" WHERE {SCORES_FILTER} AND Dataset != '' GROUP BY version ORDER BY version"
            ),
            visualization="barchart",
            columns=("version", "mean_score"),
            description="Mean score against the golden answers (reference_answers) per model/prompt version.",
            min=0,
            max=1,
            decimals=3,
        ),
        Panel(
            key="reference_metrics_by_version",
            title="Reference metrics by version",
            sql=(
                f"SELECT {SCORE_VERSION} AS version, Dataset AS dataset, metric, avg(Signals[metric]) AS mean,"
                " count() AS items FROM call_scores FINAL ARRAY JOIN mapKeys(Signals) AS metric"
                f" WHERE {SCORES_FILTER} AND Dataset != '' GROUP BY version, dataset, metric"
                " ORDER BY version, dataset, metric"
            ),
            visualization="table",
            columns=("version", "dataset", "metric", "mean", "items"),
            description="Every reference metric (ROUGE, BLEU, embedding similarity...) per version and dataset.",
        ),
        Panel(
            key="feedback_over_time",
            title="Human feedback score",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Name AS feedback, avg(Score) AS mean_score FROM feedback"
                f" WHERE $__timeFilter(Timestamp) AND {IN_SERVICE}"
                " GROUP BY time, feedback ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "feedback", "mean_score"),
            description="Mean feedback score per interval, one series per feedback name.",
        ),
        Panel(
            key="feedback_summary",
            title="Human feedback",
            sql=(
                "SELECT Name AS feedback, count() AS records, avg(Score) AS mean_score,"
                " countIf(Score <= 0) / count() AS negative_share, argMax(Comment, Timestamp) AS latest_comment"
                " FROM feedback WHERE $__timeFilter(Timestamp)"
                f" AND {IN_SERVICE}"
                " GROUP BY feedback ORDER BY records DESC"
            ),
            visualization="table",
            columns=("feedback", "records", "mean_score", "negative_share"),
            description="Feedback records per name: count, mean score and share of scores at or below 0.",
            column_units=(("negative_share", "percentunit"),),
        ),
    ),
)
