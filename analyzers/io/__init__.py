"""The analyzers' I/O: every query and insert they run, so the analyzers themselves stay pure computations.

* :mod:`.store`: :class:`~.store.AnalysisStore`, windows of ``llm_calls`` in, ``analysis_results``,
  ``alerts`` and cached ``embeddings`` out;
* :mod:`.scores`: per-call scores (``call_scores``) and the span attributes only ``otel_traces`` keeps;
* :mod:`.references`: golden datasets (``reference_answers``);
* :mod:`.contract`: the one module that names ``llmpulse.agent``'s store contract (the declared
  ``llm_calls`` columns, inserts, opening the store a command names).

User values reach SQL only as bound parameters; column names only from the declared ``llm_calls``
columns (a whitelist), never from input.
"""
