"""The one error an analyzer run lets through to its caller: bad user input."""

from __future__ import annotations


class AnalyzerInputError(ValueError):
    """Bad user input for an analyzer run (name, option, duration, segment key).

    It propagates to the caller (the CLI exits 2 with its message); any other exception raised inside
    an analyzer is recorded as an "error" result row instead.
    """
