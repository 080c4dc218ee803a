"""llmpulse: LLMOps observability on ClickHouse.

Subpackages: ``llmpulse.agent`` (the in-process SDK, export pipeline, store and CLI),
``llmpulse.collectors``, ``llmpulse.analyzers`` and ``llmpulse.dashboards``.
"""

__version__ = "0.1.0"
