"""Quality against golden answers: are a version's answers as good as the references, and as the last version's?

The modules: :mod:`.references` (golden dataset files and matching calls to items), :mod:`.metrics`
(scores of an output against its reference), :mod:`.comparison` (paired comparison of two versions),
:mod:`.analyzer` (``llmpulse analyze quality``), :mod:`.eval_run` and :mod:`.cli` (``llmpulse
references`` and ``llmpulse eval``).
"""
