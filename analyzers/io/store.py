"""The analyzers' store: windows of ``llm_calls`` in; results, alerts and cached embeddings out.

Reading calls::

    from llmpulse.analyzers.framework.windows import windows
    from llmpulse.analyzers.io.store import AnalysisStore

    store = AnalysisStore(client, "llmpulse")
    window, reference = windows("1h", "7d")
    frame = store.read_calls(window, ["SpanId", "ResponseText"], segment_by=["model"], limit_per_segment=2000)
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.results import Alert, AnalysisResult
from llmpulse.analyzers.framework.segments import SEGMENT_COLUMNS
from llmpulse.analyzers.framework.windows import Window

from .contract import INSERT_SETTINGS, insert, llm_calls_columns
from .sql import IN_WINDOW, WINDOW_CONDITIONS, json_text, window_parameters

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Computed columns analyzers may ask for by name, besides the stored ones.
DERIVED_COLUMNS: dict[str, str] = {
    "LatencySeconds": "DurationNs / 1e9",
    "IsError": "StatusCode IN ('Error', 'STATUS_CODE_ERROR')",
    "TotalTokens": "InputTokens + OutputTokens",
}
_TEXT_COLUMNS = ("PromptText", "ResponseText", "Context", "InputMessages", "OutputMessages")
# Named row filters analyzers push into SQL (``read_calls(require_any=...)``). Each is a superset of the
# test the analyzer applies later in Python, so it never drops a usable call; it only spares reading the
# texts of calls the analyzer would discard (hallucination: no context, one choice, no log-probabilities).
ROW_FILTERS: dict[str, str] = {
    # Context given to @observe, or a tagged block / "Context:" section in the prompt messages (as
    # hallucination.signals.context_from_messages finds them), matched on the raw messages JSON.
    "context": "(Context != '' OR match(InputMessages, {context_pattern:String}))",
    # Several output messages: other choices to compare with (a JSON array longer than one).
    "choices": "JSONLength(OutputMessages) > 1",
    # Token log-probabilities, kept only as a span attribute in otel_traces.
    "logprobs": (
        f"SpanId IN (SELECT SpanId FROM {{db:Identifier}}.otel_traces WHERE {IN_WINDOW} "
        "AND mapContains(SpanAttributes, {logprobs_key:String}))"
    ),
}
_FILTER_PARAMETERS = {
    "context_pattern": (
        r"(?i)(<|\\u003c)(context|document|knowledge|source|retrieved)"
        r"|(context|knowledge|documents?|sources?|retrieved (documents|passages|context)|reference text)"
        r"([ *\t]|\\t)*:"
    ),
    "logprobs_key": "llmpulse.output.token_logprobs",
}
_HASH_SPACE = 2**64


def sample_share(rows: int, cap: int) -> float:
    """The share of a segment's ``rows`` to pass the hash cut-off so that at least ``cap`` pass, almost surely.

    The count under a cut-off is binomial; asking for ``cap + 6 sqrt(cap) + 20`` on average leaves
    fewer than ``cap`` with probability below 1e-8 (and then the segment is read again, wider).
    """
    if rows <= 0:
        return 1.0
    return min(1.0, (cap + 6.0 * math.sqrt(cap) + 20.0) / rows)


def hash_cut(share: float) -> int:
    """The largest 64-bit hash kept for a share of the hash space (share 1 keeps every row)."""
    return _HASH_SPACE - 1 if share >= 1.0 else min(_HASH_SPACE - 1, int(share * _HASH_SPACE))


def _segment_keys(frame: Any, by: Sequence[str]) -> list[tuple[str, ...]]:
    """Each row's segment key as a tuple of strings (the form the count query returns)."""
    if not by:
        return [()] * len(frame)
    return list(zip(*(frame[c].astype(str) for c in by), strict=True))


class AnalysisStore:
    """Reads and writes of one database for the analyzers (a clickhouse-connect client underneath)."""

    def __init__(self, client: Any, database: str) -> None:
        if not _IDENTIFIER.match(database or ""):
            raise ValueError(f"database {database!r} is not a valid ClickHouse identifier (letters, digits, '_')")
        self.client = client
        self.database = database

    # -- reading --------------------------------------------------------------------------------

    def read_calls(
        self,
        window: Window,
        columns: Sequence[str] = ("Timestamp", "SpanId"),
        *,
        segment: Mapping[str, str] | None = None,
        segment_by: Sequence[str] = (),
        require_text: Sequence[str] = (),
        require_any: Sequence[str] = (),
        limit_per_segment: int | None = None,
        seed: int = 0,
    ) -> Any:
        """Rows of ``llm_calls`` in ``window`` as a pandas DataFrame (one column per name asked for).

        ``segment`` keeps one segment (``{"model": "gpt-4o"}``); ``segment_by`` adds the segment
        columns (SEGMENT_COLUMNS) to the frame; ``require_text`` keeps only calls whose named text
        columns are non-empty (content captured); ``require_any`` keeps only calls passing at least
        one of the named ROW_FILTERS (e.g. ``("context",)``), tested in SQL so texts of calls an
        analyzer cannot use are never read. ``limit_per_segment`` keeps, per ``segment_by`` group, the
        at most that many calls with the smallest hash of SpanId and ``seed``: a deterministic
        pseudo-random sample whose cost follows its size, not the window's (see :meth:`_sample`).
        Rows come in hash order when sampled, else in time order.
        """
        import pandas as pd

        wanted = list(dict.fromkeys([*columns, *(SEGMENT_COLUMNS[k] for k in segment_by)]))
        prewhere, parameters = self._window_filter(window, segment)
        where = self._row_filters(require_text, require_any, parameters)
        if limit_per_segment is not None:
            return self._sample(wanted, segment_by, prewhere, where, parameters, int(limit_per_segment), int(seed))
        sql = self._select_sql(wanted, prewhere, where) + " ORDER BY Timestamp, SpanId"
        result = self.client.query(sql, parameters=parameters)
        return pd.DataFrame(result.result_rows, columns=wanted)

    def _window_filter(self, window: Window, segment: Mapping[str, str] | None) -> tuple[list[str], dict[str, Any]]:
        """Conditions on narrow columns only (time, segment), evaluated first (PREWHERE)."""
        prewhere = list(WINDOW_CONDITIONS)
        parameters = window_parameters(self.database, window)
        for i, (key, value) in enumerate(sorted((segment or {}).items())):
            if key not in SEGMENT_COLUMNS:
                raise AnalyzerInputError(f"unknown segment key {key!r}; choose from {', '.join(SEGMENT_COLUMNS)}")
            prewhere.append(f"{SEGMENT_COLUMNS[key]} = {{seg{i}:String}}")
            parameters[f"seg{i}"] = str(value)
        return prewhere, parameters

    @staticmethod
    def _row_filters(require_text: Sequence[str], require_any: Sequence[str], parameters: dict[str, Any]) -> list[str]:
        """Conditions on text columns (WHERE): tested only on the rows the narrow conditions kept."""
        where = []
        for column in require_text:
            if column not in _TEXT_COLUMNS:
                raise ValueError(f"require_text takes text columns {_TEXT_COLUMNS}, got {column!r}")
            where.append(f"{column} != ''")
        unknown = [name for name in require_any if name not in ROW_FILTERS]
        if unknown:
            raise ValueError(f"require_any takes {', '.join(ROW_FILTERS)}, got {', '.join(map(repr, unknown))}")
        if require_any:
            where.append("(" + " OR ".join(ROW_FILTERS[name] for name in dict.fromkeys(require_any)) + ")")
            parameters.update(_FILTER_PARAMETERS)
        return where

    def _select_sql(self, wanted: Sequence[str], prewhere: Sequence[str], where: Sequence[str]) -> str:
        sql = f"SELECT {', '.join(self._column_sql(c) for c in wanted)} FROM {{db:Identifier}}.llm_calls"
        sql += f" PREWHERE {' AND '.join(prewhere)}"
        return sql + (f" WHERE {' AND '.join(where)}" if where else "")

    def _sample(
        self,
        wanted: list[str],
        segment_by: Sequence[str],
        prewhere: list[str],
        where: list[str],
        parameters: dict[str, Any],
        cap: int,
        seed: int,
    ) -> Any:
        """The ``cap`` calls of smallest ``cityHash64(SpanId, seed)`` per segment, reading little more than that.

        Sorting the whole window by the hash (the obvious ``ORDER BY hash LIMIT n BY segment``) makes
        the engine hold every selected text of the window. Instead a cheap ``count()`` per segment
        (narrow columns) sizes a hash cut-off per segment that keeps about ``cap`` plus a safety margin
        of the window's rows; only rows under the cut-off reach the text filters and the sort. The
        rows under a cut-off are exactly the smallest hashes, so when a segment yields at least
        ``cap`` rows its sample is the one the full sort would give; a segment that yields fewer (text
        filters dropped many, or bad luck) is read again with a wider cut-off, up to the whole window.
        """
        import pandas as pd

        by = [SEGMENT_COLUMNS[k] for k in segment_by]
        key_sql = f"[{', '.join(f'toString({c})' for c in by)}]"
        table = "{db:Identifier}.llm_calls"
        if by:
            counted = self.client.query(
                f"SELECT {key_sql}, count() FROM {table} PREWHERE {' AND '.join(prewhere)} GROUP BY {', '.join(by)}",
                parameters=parameters,
            ).result_rows
            share = {tuple(str(v) for v in key): sample_share(int(n), cap) for key, n in counted if int(n) > 0}
            # The segment's cut-off, looked up by its key; rows of segments not asked for are skipped.
            position = f"indexOf({{keys:Array(Array(String))}}, {key_sql})"
            cut = f"{position} > 0 AND cityHash64(SpanId, {{seed:UInt64}}) <= {{cuts:Array(UInt64)}}[{position}]"
        else:
            total = int(
                self.client.query(
                    f"SELECT count() FROM {table} PREWHERE {' AND '.join(prewhere)}", parameters=parameters
                ).result_rows[0][0]
            )
            share = {(): sample_share(total, cap)} if total else {}
            cut = "cityHash64(SpanId, {seed:UInt64}) <= {cuts:Array(UInt64)}[1]"
        columns = [*(self._column_sql(c) for c in wanted), "cityHash64(SpanId, {seed:UInt64}) AS _hash"]
        sql = f"SELECT {', '.join(columns)} FROM {table} PREWHERE {' AND '.join([*prewhere, cut])}"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        sql += " ORDER BY _hash, SpanId LIMIT {cap:UInt64}" + (f" BY {', '.join(by)}" if by else "")
        parts: list[Any] = []
        while share:
            keys = list(share)
            query = {**parameters, "seed": seed, "cap": cap, "cuts": [hash_cut(share[k]) for k in keys]}
            if by:
                query["keys"] = [list(k) for k in keys]
            frame = pd.DataFrame(self.client.query(sql, parameters=query).result_rows, columns=[*wanted, "_hash"])
            found = Counter(_segment_keys(frame, by))
            wider = {
                key: min(1.0, share[key] * max(4.0, 2.0 * cap / max(found[key], 1)))
                for key in keys
                if found[key] < cap and share[key] < 1.0
            }
            if wider and len(frame):
                frame = frame[[key not in wider for key in _segment_keys(frame, by)]]
            parts.append(frame)
            share = wider
        if not parts:
            return pd.DataFrame([], columns=wanted)
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        frame = frame.sort_values(["_hash", "SpanId"] if "SpanId" in frame else ["_hash"], kind="stable")
        return frame.drop(columns="_hash").reset_index(drop=True)

    @staticmethod
    def _column_sql(name: str) -> str:
        if name in llm_calls_columns():
            return name
        if name in DERIVED_COLUMNS:
            return f"{DERIVED_COLUMNS[name]} AS {name}"
        raise ValueError(
            f"unknown llm_calls column {name!r}; known: {', '.join(llm_calls_columns() + tuple(DERIVED_COLUMNS))}"
        )

    # -- writing --------------------------------------------------------------------------------

    def write_results(self, results: Sequence[AnalysisResult], *, run_id: str = "") -> int:
        """Insert result rows into ``analysis_results``; returns how many."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "Timestamp": now,
                "RunId": run_id,
                "Analyzer": r.analyzer,
                "AnalyzerVersion": r.version,
                "WindowStart": r.window_start,
                "WindowEnd": r.window_end,
                "ReferenceStart": r.reference_start,
                "ReferenceEnd": r.reference_end,
                "Segment": r.segment,
                "Metric": r.metric,
                "Value": r.value,
                "PValue": r.p_value,
                "Threshold": r.threshold,
                "Alert": r.alert,
                "Status": r.status,
                "Details": json_text({**r.details, **({"summary": r.summary} if r.summary else {})}),
            }
            for r in results
        ]
        return insert(self.client, self.database, "analysis_results", rows, deduplicate=True)

    def write_alerts(self, alerts: Sequence[Alert], *, run_id: str = "") -> int:
        """Insert rows into ``alerts``; returns how many."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "Timestamp": now,
                "AlertId": uuid.uuid4().hex,
                "RunId": run_id,
                "Analyzer": a.analyzer,
                "AnalyzerVersion": a.version,
                "Severity": a.severity,
                "Title": a.title,
                "Message": a.message,
                "WindowStart": a.window_start,
                "WindowEnd": a.window_end,
                "Segment": a.segment,
                "Metric": a.metric,
                "Value": a.value,
                "PValue": a.p_value,
                "Threshold": a.threshold,
                "Details": json_text(a.details),
            }
            for a in alerts
        ]
        return insert(self.client, self.database, "alerts", rows, deduplicate=True)

    # -- embeddings cache (the EmbeddingCache protocol of embeddings.Embedder) -------------------

    def get_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """Cached vectors for the given text hashes (those found)."""
        found: dict[str, list[float]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 5000):
            chunk = unique[start : start + 5000]
            result = self.client.query(
                "SELECT TextHash, Embedding FROM {db:Identifier}.embeddings "
                "WHERE Model = {model:String} AND TextHash IN {hashes:Array(String)}",
                parameters={"db": self.database, "model": model, "hashes": chunk},
            )
            for text_hash, vector in result.result_rows:
                key = text_hash.decode() if isinstance(text_hash, bytes) else text_hash
                found[key] = vector
        return found

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: Any) -> int:
        """Store vectors (a 2-D array, one row per hash); returns how many rows were written."""
        if len(hashes) == 0:
            return 0
        now = datetime.now(timezone.utc)
        data = [[model, h, len(v), [float(x) for x in v], now] for h, v in zip(hashes, vectors, strict=True)]
        self.client.insert(
            "embeddings",
            data,
            column_names=["Model", "TextHash", "Dim", "Embedding", "CreatedAt"],
            database=self.database,
            settings=INSERT_SETTINGS,
        )
        return len(data)
