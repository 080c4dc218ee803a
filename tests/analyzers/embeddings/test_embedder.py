"""Embedder: the real offline MiniLM, batched, each distinct text embedded once, cached in memory or ClickHouse."""

from __future__ import annotations

import numpy as np
import pytest
from llmpulse.analyzers.embeddings import DIMENSION, MODEL_NAME, Embedder, MemoryEmbeddingCache, text_hash
from llmpulse.analyzers.io.store import AnalysisStore

from tests.analyzers.framework_helpers import create_schema

TEXTS = [
    "How do I reset my router's password?",
    "What is the capital of Australia?",
    "How can I change the admin password on my wifi router?",
    "What is the capital of Australia?",  # a duplicate: embedded once
]


def test_text_hash_is_a_stable_128_bit_key() -> None:
    assert text_hash("hello") == text_hash("hello") and len(text_hash("hello")) == 32
    assert text_hash("hello") != text_hash("hello ")
    assert text_hash("\ud800 lone surrogate") != text_hash("")  # odd text still hashes


def test_encode_gives_unit_vectors_in_input_order_with_meaning(minilm) -> None:
    embedder = Embedder(MemoryEmbeddingCache(), model=minilm)
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (4, DIMENSION) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[1], vectors[3])
    similarity = vectors @ vectors.T
    assert similarity[0, 2] > 0.6 > similarity[0, 1]  # the two router questions are close, the capital is not
    assert embedder.encoded == 3
    assert embedder.encode([]).shape == (0, DIMENSION)


def test_memory_cache_embeds_each_text_once_and_survives_a_save(minilm, tmp_path) -> None:
    cache = MemoryEmbeddingCache()
    first = Embedder(cache, model=minilm)
    vectors = first.encode(TEXTS)
    again = first.encode([*TEXTS[::-1], "a new text"])
    assert first.encoded == 4  # only "a new text" was new
    np.testing.assert_array_equal(again[:4], vectors[::-1])
    cache.save(tmp_path / "cache.npz")
    loaded = MemoryEmbeddingCache.load(tmp_path / "cache.npz")
    second = Embedder(loaded, model=minilm)
    np.testing.assert_array_equal(second.encode(TEXTS), vectors)
    assert second.encoded == 0


def test_clickhouse_cache_is_shared_between_embedders(minilm, ch, database) -> None:
    create_schema(ch, database)
    store = AnalysisStore(ch, database)
    first = Embedder(store, model=minilm)
    vectors = first.encode(TEXTS)
    rows = ch.query(
        "SELECT Model, count(), any(Dim) FROM {db:Identifier}.embeddings GROUP BY Model", parameters={"db": database}
    ).result_rows
    assert rows == [(MODEL_NAME, 3, DIMENSION)]
    second = Embedder(AnalysisStore(ch, database), model=minilm)
    np.testing.assert_array_equal(second.encode(TEXTS[::-1]), vectors[::-1])
    assert second.encoded == 0


def test_batches_do_not_change_the_vectors(minilm) -> None:
    texts = [f"question number {i} about the weather in city {i % 7}" for i in range(40)]
    small = Embedder(model=minilm, batch_size=3).encode(texts)
    large = Embedder(model=minilm, batch_size=64).encode(texts)
    np.testing.assert_allclose(small, large, atol=1e-5)


@pytest.mark.parametrize("value", [None, 12])
def test_non_text_values_are_embedded_as_their_string(minilm, value) -> None:
    vectors = Embedder(model=minilm).encode([value, str(value)])
    np.testing.assert_array_equal(vectors[0], vectors[1])
