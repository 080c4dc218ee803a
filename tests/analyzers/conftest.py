"""Fixtures of the analyzer tests: the offline sentence-transformers model, loaded once per session."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The bundled all-MiniLM-L6-v2 (the same process-wide instance the analyzers' Embedder uses)."""
    from llmpulse.analyzers.embeddings import load_model

    return load_model()
