"""The llmpulse dashboards: every panel defined once, as SQL with the Grafana ClickHouse plugin's macros.

Six dashboards, one module each: LLM overview, Sessions and users, Quality, GPU, Serving engine and Traces. Tables are
named without a database (the Grafana data source's ``defaultDatabase`` names it; the report qualifies
them). Filters on the ``service``, ``model`` and ``prompt_version`` variables use ``$__conditionalAll``
so "All" costs nothing (:mod:`.variables`). No variable value reaches the SQL unescaped: each is
percent-encoded by Grafana and decoded in SQL. Every SQL here is run, expanded, on the real schema by
``tests/dashboards/test_panels_sql.py``.
"""

from __future__ import annotations

from llmpulse.dashboards.model import Dashboard, Panel

from .gpu import GPU
from .llm_overview import LLM_OVERVIEW
from .quality import QUALITY
from .serving import SERVING
from .sessions import SESSIONS
from .traces import TRACES

DASHBOARDS: tuple[Dashboard, ...] = (LLM_OVERVIEW, SESSIONS, QUALITY, GPU, SERVING, TRACES)

__all__ = ["DASHBOARDS", "GPU", "LLM_OVERVIEW", "QUALITY", "SERVING", "SESSIONS", "TRACES", "all_panels"]


def all_panels() -> list[tuple[Dashboard, Panel]]:
    return [(dashboard, panel) for dashboard in DASHBOARDS for panel in dashboard.panels]
