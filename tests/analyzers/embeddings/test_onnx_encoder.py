"""The ONNX Runtime encoder: sentence-transformers' vectors, without PyTorch in the process, exported once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from llmpulse.analyzers import embeddings
from llmpulse.analyzers.embeddings import onnx_encoder
from llmpulse.analyzers.embeddings.onnx_encoder import OnnxSentenceEncoder, _length_batches

TEXTS = [
    "How do I reset my router's password?",
    "",
    "Ünïcödé, emoji 🚀 and 中文 in one line",
    "word " * 400,  # past the 256 word pieces: truncated the same way
    "What is the capital of Australia?",
    "a",
]


@pytest.fixture(scope="module")
def onnx_model() -> OnnxSentenceEncoder:
    model_dir = embeddings._model_dir()
    return OnnxSentenceEncoder(model_dir, onnx_encoder.ensure_graph(model_dir))


def test_vectors_match_sentence_transformers_on_pytorch(onnx_model) -> None:
    pytest.importorskip("torch")
    reference = embeddings._load_torch("cpu")
    expected = reference.encode(TEXTS, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    got = onnx_model.encode(TEXTS)
    assert got.shape == (len(TEXTS), embeddings.DIMENSION) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_batching_does_not_change_the_vectors(onnx_model) -> None:
    texts = [f"question {i} " + "about the weather " * (i % 9) for i in range(30)]
    one_by_one = np.stack([onnx_model.encode([t])[0] for t in texts])
    np.testing.assert_allclose(onnx_model.encode(texts), one_by_one, atol=1e-5)
    np.testing.assert_allclose(onnx_model.encode(texts, batch_size=2), one_by_one, atol=1e-5)
    assert onnx_model.encode([]).shape == (0, embeddings.DIMENSION)


def test_length_batches_group_short_texts_and_keep_long_ones_apart() -> None:
    pieces = [[1] * n for n in (300, 5, 5, 5, 200, 5)]
    batches = _length_batches(pieces, tokens=512, most=None)
    assert sorted(i for b in batches for i in b) == list(range(6))  # every text once
    assert batches[0] == [1, 2, 3, 5]  # the short ones together, shortest first
    assert [4] in batches and [0] in batches  # 200 and 300 pieces padded together would pass 512
    assert all(len(b) <= 2 for b in _length_batches(pieces, tokens=512, most=2))


def test_an_analyzer_process_never_imports_pytorch() -> None:
    """The point of the backend: the embedding model runs in a process without torch or sentence-transformers."""
    script = textwrap.dedent(
        """
        import sys
        from llmpulse.analyzers.embeddings import Embedder
        vectors = Embedder().encode(["first text", "second text"])
        assert vectors.shape == (2, 384), vectors.shape
        print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_graph_is_exported_once_per_weights_and_atomically(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(onnx_encoder.CACHE_VARIABLE, str(tmp_path))
    model_dir = embeddings._model_dir()
    path = onnx_encoder.ensure_graph(model_dir)
    assert path.parent == tmp_path and path.name.startswith("all-MiniLM-L6-v2-") and path.suffix == ".onnx"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    stamp = path.stat().st_mtime_ns
    assert onnx_encoder.ensure_graph(model_dir) == path and path.stat().st_mtime_ns == stamp  # not exported again


def test_a_damaged_graph_in_the_cache_is_exported_again(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(onnx_encoder.CACHE_VARIABLE, str(tmp_path))
    model_dir = embeddings._model_dir()
    path = onnx_encoder.graph_path(model_dir)
    path.write_bytes(b"half a graph")  # e.g. a disk that filled up under another tool
    with caplog.at_level("WARNING", logger="llmpulse.analyzers.embeddings.onnx_encoder"):
        encoder = onnx_encoder.load_encoder(model_dir)
    assert "does not load" in caplog.text and "exporting it again" in caplog.text
    assert path.stat().st_size > 10_000_000
    assert encoder.encode(["a text"]).shape == (1, embeddings.DIMENSION)


def test_a_failed_export_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(onnx_encoder.CACHE_VARIABLE, str(tmp_path))
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(onnx_encoder.ExportError, match="exporting the embedding model to ONNX failed"):
        onnx_encoder.ensure_graph(broken)
    assert not list(tmp_path.glob("*.onnx"))


def test_an_unusable_cache_folder_is_an_export_error_that_names_the_variable(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(onnx_encoder.CACHE_VARIABLE, str(blocker / "models"))  # a folder under a file
    with pytest.raises(onnx_encoder.ExportError, match=r"cannot keep the ONNX graph in .*set LLMPULSE_MODEL_CACHE"):
        onnx_encoder.ensure_graph(embeddings._model_dir())


def test_backend_choice(monkeypatch) -> None:
    monkeypatch.delenv(embeddings.BACKEND_VARIABLE, raising=False)
    assert embeddings.backend_for(None) == "onnx" and embeddings.backend_for("cpu") == "onnx"
    assert embeddings.backend_for("cuda") == "torch"  # sentence-transformers on the GPU
    monkeypatch.setenv(embeddings.BACKEND_VARIABLE, "torch")
    assert embeddings.backend_for(None) == "torch"
    monkeypatch.setenv(embeddings.BACKEND_VARIABLE, "tensorflow")
    with pytest.raises(ValueError, match="LLMPULSE_EMBEDDING_BACKEND must be auto, onnx or torch, not 'tensorflow'"):
        embeddings.backend_for(None)


def test_without_an_onnx_graph_the_model_falls_back_to_pytorch(monkeypatch, caplog) -> None:
    pytest.importorskip("torch")

    def cannot_export(model_dir):
        raise onnx_encoder.ExportError("exporting the embedding model to ONNX failed: No module named 'onnx'")

    monkeypatch.delenv(embeddings.BACKEND_VARIABLE, raising=False)
    monkeypatch.setattr(onnx_encoder, "ensure_graph", cannot_export)
    monkeypatch.setattr(embeddings, "_models", {})
    with caplog.at_level("WARNING", logger="llmpulse.analyzers.embeddings"):
        model = embeddings.load_model("cpu")
    assert not isinstance(model, OnnxSentenceEncoder)
    assert "No module named 'onnx'; using PyTorch for embeddings" in caplog.text
    monkeypatch.setenv(embeddings.BACKEND_VARIABLE, "onnx")  # asked for explicitly: the error, not a fallback
    monkeypatch.setattr(embeddings, "_models", {})
    with pytest.raises(onnx_encoder.ExportError):
        embeddings.load_model("cpu")
