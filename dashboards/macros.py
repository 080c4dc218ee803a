"""Expand a panel's SQL the way Grafana and the ClickHouse data source plugin do, for a given time range.

A panel query passes three stages before ClickHouse sees it, and this module reproduces each:

1. the plugin's frontend ``applyConditionalAll`` (``src/data/CHDatasource.ts``): ``$__conditionalAll(cond,
   $var)`` becomes ``1=1`` when ``$var`` is "All" or empty, else ``cond``;
2. Grafana's template service with the plugin's ``format`` function: ``$var`` / ``${var}`` become the
   value, a multi-value as ``'a','b'`` (no quoting of single values); ``${var:format}`` uses Grafana's
   format of that name (:data:`FORMATS`); the global ``$__from`` / ``$__to`` become epoch milliseconds;
3. the backend macros (``pkg/macros/macros.go`` plus the SDK defaults in
   ``grafana-plugin-sdk-go/data/sqlutil/macros.go``), longest name first, each matched by
   ``\\$__name\\b`` with a bracket-balanced argument list.

The expanded SQL is what the report runs and what the tests run on the real schema, so a panel that
would fail in Grafana fails here first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

ALL = "$__all"
"""The value Grafana stores for a variable set to "All"."""


class MacroError(ValueError):
    """A macro with the wrong arguments or an unclosed bracket (the plugin refuses the query too)."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard time range and the panel interval Grafana would send with the query."""

    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"TimeRange.{name} must be timezone-aware, got {value!r}")
        if self.end <= self.start:
            raise ValueError("TimeRange must end after it starts")

    @classmethod
    def last(cls, window: timedelta, *, end: datetime | None = None, points: int = 120) -> TimeRange:
        """The last ``window`` up to ``end`` (default now) with an interval giving about ``points`` buckets."""
        stop = end or datetime.now(timezone.utc)
        return cls(stop - window, stop, nice_interval(window / points))

    @property
    def from_ms(self) -> int:
        return _millis(self.start)

    @property
    def to_ms(self) -> int:
        return _millis(self.end)


def _millis(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_NICE_SECONDS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def nice_interval(raw: timedelta) -> timedelta:
    """The smallest round interval (1s, 5s, 1m, 5m, 1h, ...) not below ``raw``, like Grafana's rounding."""
    seconds = raw.total_seconds()
    for step in _NICE_SECONDS:
        if step >= seconds:
            return timedelta(seconds=step)
    return timedelta(days=max(1, round(seconds / 86400)))


# --- stage 1: $__conditionalAll (plugin frontend) ----------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_IN_ARG = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")


def _frontend_args(sql: str, open_index: int) -> list[str]:
    """``getMacroArgs`` of CHDatasource.ts: arguments of the bracket at ``open_index``, untrimmed."""
    args: list[str] = []
    depth = 0
    last = open_index + 1
    for match in re.finditer(r"\(|\)|,", sql[open_index:]):
        token, position = match.group(), open_index + match.end()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if token == "," and depth == 1:
            args.append(sql[last : position - 1])
            last = position
        if depth == 0:
            args.append(sql[last : position - 1])
            return args
    return []


def apply_conditional_all(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """Stage 1, as ``applyConditionalAll``: innermost-last (``lastIndexOf``) replacement."""
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        params = _frontend_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if len(params) != 2:
            return sql
        phrase = params[0]
        found = _VARIABLE_IN_ARG.search(params[1].strip())
        if found:
            value = variables.get(found.group(0))
            text = ",".join(value) if isinstance(value, (list, tuple)) else ("" if value is None else str(value))
            if text in ("", ALL):
                phrase = "1=1"
        sql = sql.replace(f"{_CONDITIONAL_ALL}{params[0]},{params[1]})", phrase)
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- stage 2: Grafana template variables -------------------------------------------------------------

# Grafana's variable regex (public/app/features/variables/utils.ts): $name, [[name]], ${name} and ${name:fmt}.
_TEMPLATE_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _plugin_format(value: str | Sequence[str]) -> str:
    """The plugin's ``format``: arrays as ``'a','b'``, single values unchanged (no escaping at all)."""
    if isinstance(value, (list, tuple)):
        return "'" + "','".join(str(v) for v in value) + "'"
    return str(value)


def _each(value: str | Sequence[str], one: Callable[[str], str]) -> str:
    items = value if isinstance(value, (list, tuple)) else [value]
    return ",".join(one(str(item)) for item in items)


def _percent_encode(text: str) -> str:
    """``encodeURIComponentStrict``: only ``A-Za-z0-9-_.~`` stay, everything else is ``%XX`` of UTF-8."""
    return quote(text, safe="")


def _glob(value: str | Sequence[str]) -> str:
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(map(str, value)) + "}" if len(value) > 1 else (str(value[0]) if value else "")
    return str(value)


# Grafana's variable formats (scenes ``formatRegistry.ts``), as ``${var:format}`` selects them. Note that
# ``sqlstring`` and ``singlequote`` leave backslashes alone, and ClickHouse reads ``\'`` in a string as a
# quote: neither is safe for free text in ClickHouse SQL. ``percentencode`` is (its output has no quote
# and no backslash), decoded in SQL with ``decodeURLComponent``.
FORMATS: dict[str, Callable[[str | Sequence[str]], str]] = {
    "raw": lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v),
    "csv": lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v),
    "sqlstring": lambda v: _each(v, lambda t: "'" + t.replace("'", "''").replace('"', '\\"') + "'"),
    "singlequote": lambda v: _each(v, lambda t: "'" + t.replace("'", "\\'") + "'"),
    "doublequote": lambda v: _each(v, lambda t: '"' + t.replace('"', '\\"') + '"'),
    "percentencode": lambda v: _percent_encode(
        "{" + ",".join(map(str, v)) + "}" if isinstance(v, (list, tuple)) else str(v)
    ),
    "json": lambda v: json.dumps(
        list(v) if isinstance(v, (list, tuple)) else v, separators=(",", ":"), ensure_ascii=False
    ),
    "glob": _glob,
}


def format_value(value: str | Sequence[str], fmt: str | None) -> str:
    """A variable's value as Grafana interpolates it: ``fmt`` None is the data source's own format."""
    if fmt is None:
        return _plugin_format(value)
    return FORMATS.get(fmt.split(":", 1)[0], _glob)(value)  # Grafana falls back to glob for unknown formats


def replace_variables(
    sql: str,
    variables: Mapping[str, str | Sequence[str]],
    time_range: TimeRange,
    all_values: Mapping[str, Sequence[str]],
) -> str:
    """Stage 2: user variables (All expands to every option), ``$__from`` and ``$__to``; others untouched."""
    builtins = {"__from": str(time_range.from_ms), "__to": str(time_range.to_ms)}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        if name not in variables:
            return match.group(0)
        value = variables[name]
        if value == ALL or (isinstance(value, (list, tuple)) and list(value) == [ALL]):
            value = list(all_values.get(name, ()))
        return format_value(value, fmt)

    return _TEMPLATE_VARIABLE.sub(substitute, sql)


# --- stage 3: backend macros -------------------------------------------------------------------------


def _to_datetime(moment: datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _to_datetime64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_millis(moment)})"


def _to_date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(timezone.utc):%Y-%m-%d}')"


def _one(args: list[str]) -> str:
    if len(args) != 1:
        raise MacroError(f"unexpected number of arguments: expected 1 argument, received {len(args)}")
    return args[0]


def _interval_seconds(tr: TimeRange) -> int:
    return int(max(tr.interval.total_seconds(), 1))


def _format_interval(interval: timedelta) -> str:
    """``gtime.FormatInterval``: the largest whole unit."""
    ms = int(interval.total_seconds() * 1000)
    for unit, size in (("y", 365 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms >= 1 else "1ms"


def _time_group(tr: TimeRange, args: list[str]) -> str:
    if len(args) != 2:
        raise MacroError(f"unexpected number of arguments: expected 2 arguments, received {len(args)}")
    text = args[1].strip("'\"")
    match = re.fullmatch(r"(\d+)([smhdw])", text)
    if not match:
        raise MacroError(f"$__timeGroup: bad interval {args[1]!r}")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {seconds} second)"


MacroFunc = Callable[[TimeRange, list[str]], str]

MACROS: dict[str, MacroFunc] = {
    "fromTime": lambda tr, a: _to_datetime(tr.start),
    "toTime": lambda tr, a: _to_datetime(tr.end),
    "fromTime_ms": lambda tr, a: _to_datetime64(tr.start),
    "toTime_ms": lambda tr, a: _to_datetime64(tr.end),
    "timeFilter": lambda tr, a: f"{_one(a)} >= {_to_datetime(tr.start)} AND {_one(a)} <= {_to_datetime(tr.end)}",
    "timeFilter_ms": lambda tr, a: f"{_one(a)} >= {_to_datetime64(tr.start)} AND {_one(a)} <= {_to_datetime64(tr.end)}",
    "dateFilter": lambda tr, a: f"{_one(a)} >= {_to_date(tr.start)} AND {_one(a)} <= {_to_date(tr.end)}",
    "dateTimeFilter": lambda tr, a: _date_time_filter(tr, a),
    "dt": lambda tr, a: _date_time_filter(tr, a),
    "timeFrom": lambda tr, a: f"{_one(a)} >= {_to_datetime(tr.start)}",
    "timeTo": lambda tr, a: f"{_one(a)} <= {_to_datetime(tr.end)}",
    "timeInterval": lambda tr, a: f"toStartOfInterval(toDateTime({_one(a)}), INTERVAL {_interval_seconds(tr)} second)",
    "timeInterval_ms": lambda tr, a: (
        f"toStartOfInterval(toDateTime64({_one(a)}, 3), INTERVAL "
        f"{int(max(tr.interval.total_seconds() * 1000, 1))} millisecond)"
    ),
    "timeGroup": _time_group,
    "interval_s": lambda tr, a: str(_interval_seconds(tr)),
    "interval": lambda tr, a: _format_interval(tr.interval),
    "interval_ms": lambda tr, a: str(int(tr.interval.total_seconds() * 1000)),
}


def _date_time_filter(tr: TimeRange, args: list[str]) -> str:
    if len(args) != 2:
        raise MacroError(f"unexpected number of arguments: expected 2 arguments, received {len(args)}")
    date_column, time_column = args
    return (
        f"({date_column} >= {_to_date(tr.start)} AND {date_column} <= {_to_date(tr.end)}) AND "
        f"({time_column} >= {_to_datetime(tr.start)} AND {time_column} <= {_to_datetime(tr.end)})"
    )


def _backend_args(text: str) -> tuple[list[str], int]:
    """``parseArgs`` of sqlutil: (trimmed args, consumed length); (None-like [], 0) when no bracket follows."""
    if not text.startswith("("):
        return [], 0
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, index + 1
        elif char == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    raise MacroError("failed to parse macro arguments (missing close bracket?)")


def expand_backend_macros(sql: str, time_range: TimeRange) -> str:
    """Stage 3, as ``sqlutil.Interpolate``: longest macro names first, every occurrence replaced."""
    for name in sorted(MACROS, key=len, reverse=True):
        pattern = re.compile(rf"\$__{re.escape(name)}\b")
        while True:
            match = pattern.search(sql)
            if match is None:
                break
            args, length = _backend_args(sql[match.end() :])
            full = sql[match.start() : match.end() + length]
            sql = sql.replace(full, MACROS[name](time_range, args))
    return sql


def expand(
    sql: str,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    all_values: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The SQL ClickHouse receives for a panel: all three stages, in Grafana's order."""
    values = dict(variables or {})
    sql = apply_conditional_all(sql, values)
    sql = replace_variables(sql, values, time_range, all_values or {})
    return expand_backend_macros(sql, time_range)


UNEXPANDED = re.compile(r"\$\{?\w+|\[\[\w+")
"""Anything that still looks like a macro or variable after :func:`expand`: an error in a panel."""
