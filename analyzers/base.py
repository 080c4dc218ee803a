"""Old path of ``Window``, kept only because ``llmpulse.agent`` (demo) imports it.

lead: at merge, import ``Window`` from ``llmpulse.analyzers.framework.windows`` in agent/ and delete this module.
"""

from .framework.windows import Window

__all__ = ["Window"]
