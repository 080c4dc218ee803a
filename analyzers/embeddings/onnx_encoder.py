"""all-MiniLM-L6-v2 on ONNX Runtime: the same vectors as sentence-transformers, without PyTorch in the process.

Importing PyTorch and sentence-transformers costs an analyzer process about 300 MB resident before the
first text, and the forward passes another 100-400 MB; ONNX Runtime runs the same graph in a fraction
(bench/analyze_scale.py). The graph is exported once per machine from the bundled weights
(``onnx_export``, in a child process, so PyTorch never enters this one) and kept in a cache folder.

The pipeline is sentence-transformers' for this model (``modules.json``): the fast tokenizer truncated
to ``max_seq_length`` (256 word pieces), BERT, mean pooling over the attention mask, L2 normalisation.
Texts are sorted by length and batched under a budget of padded tokens, so short texts share a forward
pass and long ones do not pad each other: faster than fixed batches on a CPU, and the activations stay
small.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

CACHE_VARIABLE = "LLMPULSE_MODEL_CACHE"
"""Folder of the exported graph; default ``$XDG_CACHE_HOME/llmpulse/models`` (``~/.cache/llmpulse/models``)."""

TOKENS_PER_BATCH = 512
"""Padded word pieces per forward pass (measured on 2 cores: as fast as batches of 8-16 texts, +20 MB)."""

_export_lock = threading.Lock()


class ExportError(RuntimeError):
    """The ONNX graph could not be made (no PyTorch or onnx package, or the export failed)."""


def cache_folder() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llmpulse" / "models"


def graph_path(model_dir: Path) -> Path:
    """Where the graph of the weights in ``model_dir`` is kept: named by the weights' size and mtime, so
    an upgraded model package gets a new export and never a stale one."""
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    return cache_folder() / f"all-MiniLM-L6-v2-{stat.st_size:x}-{stat.st_mtime_ns:x}.onnx"


def ensure_graph(model_dir: Path) -> Path:
    """The exported graph, exporting it first (a child process with PyTorch, about 5 s) if it is missing."""
    path = graph_path(model_dir)
    with _export_lock:
        if path.exists():
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot keep the ONNX graph in {path.parent}: {exc} (set {CACHE_VARIABLE})") from exc
        _log.info("exporting the embedding model to ONNX once for this machine: %s", path)
        command = [sys.executable, "-m", "llmpulse.analyzers.embeddings.onnx_export", str(model_dir), str(path)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.exists():
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise ExportError(
                f"exporting the embedding model to ONNX failed: {reason[-1] if reason else done.returncode}"
            )
    return path


def load_encoder(model_dir: Path, providers: Sequence[str] = ("CPUExecutionProvider",)) -> OnnxSentenceEncoder:
    """The encoder on the exported graph; a cached graph that no longer loads (a damaged file, a graph
    from an incompatible onnxruntime) is exported again, once. ExportError when that fails too."""
    path = ensure_graph(model_dir)
    try:
        return OnnxSentenceEncoder(model_dir, path, providers=providers)
    except ImportError as exc:
        raise ExportError(f"the ONNX encoder needs {exc.name or 'a missing package'}: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own exception types for an unreadable graph
        _log.warning("the ONNX graph %s does not load (%s); exporting it again", path, exc)
        path.unlink(missing_ok=True)
    path = ensure_graph(model_dir)
    try:
        return OnnxSentenceEncoder(model_dir, path, providers=providers)
    except Exception as exc:
        raise ExportError(f"the exported ONNX graph {path} does not load: {exc}") from exc


class OnnxSentenceEncoder:
    """``encode`` with sentence-transformers' signature (the keywords the Embedder passes), on ONNX Runtime."""

    def __init__(self, model_dir: Path, graph: Path, *, providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        import onnxruntime
        import tokenizers

        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config.get("max_seq_length", 256))
        self.tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=list(providers))
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.device = "cuda" if self.session.get_providers()[0].startswith("CUDA") else "cpu"

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int | None = None,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> Any:
        """Float32 (len(sentences), 384), rows in input order; ``batch_size`` caps texts per pass (None: tokens only)."""
        import numpy as np

        del convert_to_numpy, show_progress_bar  # always numpy, never a bar
        pieces = [encoding.ids for encoding in self.tokenizer.encode_batch(list(sentences))]
        vectors = np.zeros((len(pieces), self.dimension), dtype=np.float32)
        for batch in _length_batches(pieces, TOKENS_PER_BATCH, batch_size):
            vectors[batch] = self._forward([pieces[i] for i in batch])
        if normalize_embeddings and len(vectors):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _forward(self, pieces: list[list[int]]) -> Any:
        """Mean-pooled last hidden states of one batch (padding to its longest text)."""
        import numpy as np

        width = max(len(p) for p in pieces)
        ids = np.zeros((len(pieces), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, p in enumerate(pieces):
            ids[row, : len(p)] = p
            mask[row, : len(p)] = 1
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        summed = np.einsum("bth,bt->bh", hidden, mask.astype(hidden.dtype))
        return summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)


def _length_batches(pieces: Sequence[Sequence[int]], tokens: int, most: int | None) -> list[list[int]]:
    """Indices of ``pieces`` grouped shortest first, each group's padded size within ``tokens`` (one text at least)."""
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = max(len(pieces[index]), 1)  # sorted: the newest is the longest of its group
        if current and ((len(current) + 1) * width > tokens or (most is not None and len(current) >= most)):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
