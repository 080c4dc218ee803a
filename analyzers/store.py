"""Old path of the store and the runner, kept only because ``llmpulse.agent`` (demo, sidecar) imports it.

lead: at merge, import ``AnalysisStore`` from ``llmpulse.analyzers.io.store`` and ``run_analyzer`` /
``run_all`` from ``llmpulse.analyzers.framework.runner`` in agent/, and delete this module.
"""

from .framework.runner import run_all, run_analyzer
from .io.store import AnalysisStore

__all__ = ["AnalysisStore", "run_all", "run_analyzer"]
