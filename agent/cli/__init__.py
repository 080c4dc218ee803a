"""The ``llmpulse`` command line: it imports what each verb needs (lazily), and nothing imports it.

- ``main``: the parser, ``main()`` and the ``demo`` and ``schema`` verbs; ``exit_codes``;
- ``agent_verb``: ``llmpulse agent``, the sidecar;
- ``demo``: the instrumented sample app ``llmpulse demo`` runs.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
