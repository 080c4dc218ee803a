"""Batch analyzer jobs: read a window from ClickHouse, compute, write result rows.

``framework/`` holds what every analyzer shares (windows, options, segments, result rows, the tests,
the registry, the runner, and ``score_window`` for the per-call scorers); ``io/`` every query and
insert; one folder per analyzer (``drift/``, ``hallucination/``, ``injection/``, ``quality/``) and
``operational.py``; ``embeddings/`` (the MiniLM on ONNX Runtime or PyTorch, and its cache) and
``text.py`` serve the text analyzers; ``cli.py`` is ``llmpulse analyze``.
"""
