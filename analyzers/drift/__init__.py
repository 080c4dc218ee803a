"""Embedding drift: are this window's texts drawn from the distribution of the reference window's?

Public API: :func:`two_sample_test` (the drift alarm's test on two embedding matrices). The modules:
:mod:`.two_sample` (the tests, pure), :mod:`.analyzer` (``llmpulse analyze drift``).
"""

from .two_sample import two_sample_test

__all__ = ["two_sample_test"]
