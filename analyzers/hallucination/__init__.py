"""Hallucination: does a response state what its context (or the model's own other samples) does not support?

Public API for apps that want a guardrail: :func:`score` and :func:`score_many`. The modules, from
text to alarm: :mod:`.grounding` and :mod:`.consistency` (signals), :mod:`.signals` (a call's content
and score), :mod:`.model` (the logistic heads, ``hallucination_model.json``), :mod:`.fit` (fitting
them), :mod:`.judges` (optional second opinions), :mod:`.analyzer` (``llmpulse analyze hallucination``).
"""

from .guardrail import score, score_many

__all__ = ["score", "score_many"]
