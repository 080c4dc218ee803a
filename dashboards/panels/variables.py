"""The template variables the dashboards share and the SQL filters on them, safe against any value.

A filter is ``$__conditionalAll(...)``, so "All" costs nothing, and reads the picked values through
``${var:percentencode}``, so no value can end a string in the SQL.
"""

from __future__ import annotations

from llmpulse.dashboards.model import Variable


def selected(variable: str) -> str:
    """The values picked in a drop-down variable as an SQL array that no value can break out of.

    The plugin's own format pastes them unescaped (``'a','b'``), and Grafana's ``sqlstring`` leaves
    backslashes, which ClickHouse reads as escapes; ``percentencode`` leaves neither a quote nor a
    backslash (a multi-value arrives as ``{a,b}`` encoded). A value holding a comma or edge braces then
    matches nothing: the filter fails closed.
    """
    return f"splitByChar(',', trim(BOTH '{{}}' FROM decodeURLComponent('${{{variable}:percentencode}}')))"


def one_of(column: str, variable: str) -> str:
    """``column`` is one of the values picked in ``variable``; "All" costs nothing ($__conditionalAll)."""
    return f"$__conditionalAll(has({selected(variable)}, {column}), ${variable})"


IN_SERVICE = one_of("ServiceName", "service")
IN_MODEL = one_of("RequestModel", "model")
IN_PROMPT_VERSION = one_of("PromptVersion", "prompt_version")
IN_HOST = one_of("Hostname", "host")

CALLS_FILTER = f"$__timeFilter(Timestamp) AND {IN_SERVICE} AND {IN_MODEL} AND {IN_PROMPT_VERSION}"

SERVICE = Variable(
    "service",
    "Service",
    sql="SELECT DISTINCT ServiceName FROM llm_calls WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
)
MODEL = Variable(
    "model",
    "Model",
    sql=(
        "SELECT DISTINCT RequestModel FROM llm_calls WHERE $__timeFilter(Timestamp)"
        f" AND {IN_SERVICE} ORDER BY RequestModel"
    ),
)
PROMPT_VERSION = Variable(
    "prompt_version",
    "Prompt version",
    sql=(
        "SELECT DISTINCT PromptVersion FROM llm_calls WHERE $__timeFilter(Timestamp) AND PromptVersion != ''"
        f" AND {IN_SERVICE} ORDER BY PromptVersion"
    ),
)
CALL_VARIABLES = (SERVICE, MODEL, PROMPT_VERSION)
