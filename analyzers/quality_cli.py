"""Old path of the ``references`` and ``eval`` verbs, kept only because ``llmpulse.agent.cli`` lists it.

lead: at merge, name ``llmpulse.analyzers.quality.cli`` in agent/cli's verb modules and delete this module.
"""

from .quality.cli import register

__all__ = ["register"]
