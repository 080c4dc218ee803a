"""Old path of golden datasets, kept only because ``llmpulse.agent`` (demo) imports it.

lead: at merge, import ``ReferenceItem`` from ``llmpulse.analyzers.quality.references`` and
``store_items`` from ``llmpulse.analyzers.io.references`` in agent/, and delete this module.
"""

from .io.references import store_items
from .quality.references import ReferenceItem

__all__ = ["ReferenceItem", "store_items"]
