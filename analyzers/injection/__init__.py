"""Prompt injection: does a prompt, or the context retrieved for it, try to take over the model?

:mod:`.signals` scores a text (attack patterns and similarity to known attacks, the bank in
``injection_patterns.json``); :mod:`.analyzer` is ``llmpulse analyze injection``.
"""
