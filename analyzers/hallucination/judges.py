"""Optional second opinions on grounding, off by default: a local NLI cross-encoder and an LLM judge.

Each adds one signal per call that has a context (``nli_unsupported``, ``judge_hallucinated``); they
are recorded beside the calibrated score in ``call_scores`` and never silently replace it, because
their accuracy on your traffic is unknown until you measure it.

* :class:`NliJudge` loads a sentence-transformers ``CrossEncoder`` from a local directory (no
  download), e.g. an MNLI model or a faithfulness classifier such as HHEM. For each response sentence
  it asks P(context entails sentence); the signal is one minus the smallest such probability.
* :class:`LlmJudge` asks an OpenAI-compatible endpoint (``openai`` client) whether the answer is
  supported by the context, with a one-word verdict prompt in the style of Arize Phoenix's
  hallucination template (reference text, question, answer in; "grounded" or "hallucinated" out). The API key comes from ``LLMPULSE_JUDGE_API_KEY`` or
  ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmpulse.analyzers.text import split_sentences

from .signals import CallContent

_log = logging.getLogger(__name__)
MAX_CONTEXT_CHARS = 6000

JUDGE_PROMPT = """You are checking whether an answer is supported by a reference text.

[Reference text]
{context}

[Question]
{question}

[Answer]
{answer}

Is every factual claim in the answer supported by the reference text? Reply with exactly one word:
"grounded" if it is, "hallucinated" if the answer states anything the reference text does not support."""


class NliJudge:
    """P(entailment) of each response sentence given the context, from a local cross-encoder."""

    signal = "nli_unsupported"

    def __init__(self, path: str | Path, *, model: Any = None, batch_size: int = 16) -> None:
        self.path = Path(path)
        if model is None:
            if not self.path.is_dir():
                raise ValueError(f"nli_model: {self.path} is not a directory with a cross-encoder model")
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(str(self.path), local_files_only=True)
        self.model = model
        self.batch_size = batch_size
        self.entailment_index = _entailment_index(model)

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(premise entails hypothesis) for each (premise, hypothesis) pair."""
        import numpy as np

        if not pairs:
            return []
        raw = np.asarray(self.model.predict(list(pairs), batch_size=self.batch_size, apply_softmax=True))
        if raw.ndim == 1:  # one-logit models (e.g. HHEM-style consistency scores)
            return [float(1 / (1 + math.exp(-x))) if not 0 <= x <= 1 else float(x) for x in raw]
        return [float(row[self.entailment_index]) for row in raw]

    def add_signals(self, calls: Sequence[CallContent], signals: list[dict[str, float]]) -> None:
        pairs: list[tuple[str, str]] = []
        owners: list[int] = []
        for index, call in enumerate(calls):
            if not call.context.strip():
                continue
            for sentence in split_sentences(call.response):
                pairs.append((call.context[:MAX_CONTEXT_CHARS], sentence))
                owners.append(index)
        lowest: dict[int, float] = {}
        for owner, probability in zip(owners, self.entailment(pairs), strict=True):
            lowest[owner] = min(lowest.get(owner, 1.0), probability)
        for owner, probability in lowest.items():
            signals[owner][self.signal] = 1.0 - probability


def _entailment_index(model: Any) -> int:
    config = getattr(getattr(model, "model", None), "config", None)
    labels = {int(k): str(v).lower() for k, v in (getattr(config, "id2label", None) or {}).items()}
    for index, label in labels.items():
        if label.startswith("entail"):
            return index
    return max(labels) if labels else 0  # no named label: assume the last class means "supported"


class LlmJudge:
    """A one-word verdict from an OpenAI-compatible chat endpoint: 1.0 hallucinated, 0.0 grounded."""

    signal = "judge_hallucinated"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        client: Any = None,
        timeout: float = 60.0,
    ) -> None:
        if not model:
            raise ValueError("judge_model is required with judge_url (the model name the endpoint serves)")
        if client is None:
            try:
                from openai import OpenAI
            except ImportError:
                raise ValueError("judge_url needs the openai package: pip install openai") from None

            key = api_key or os.environ.get("LLMPULSE_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY") or "none"
            client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=2)
        self.client = client
        self.model = model
        self.failures = 0

    def verdict(self, answer: str, context: str, question: str = "") -> float:
        """1.0 hallucinated, 0.0 grounded, NaN when the endpoint failed or answered something else."""
        prompt = JUDGE_PROMPT.format(context=context[:MAX_CONTEXT_CHARS], question=question or "-", answer=answer)
        try:
            completion = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=5
            )
            text = (completion.choices[0].message.content or "").strip().lower()
        except Exception as exc:  # a judge outage must not stop the analyzer; it is counted and logged
            self.failures += 1
            _log.warning("LLM judge failed: %s: %s", type(exc).__name__, str(exc)[:200])
            return math.nan
        words = re.findall(r"[a-z]+", text)
        if "hallucinated" in words:
            return 1.0
        if "grounded" in words or "factual" in words:
            return 0.0
        self.failures += 1
        return math.nan

    def add_signals(self, calls: Sequence[CallContent], signals: list[dict[str, float]]) -> None:
        for call, found in zip(calls, signals, strict=True):
            if call.context.strip() and call.response.strip():
                found[self.signal] = self.verdict(call.response, call.context)
