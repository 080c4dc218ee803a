"""Per-call hallucination signals and scores from captured content. Pure: texts in, numbers out.

A call's content comes from ``llm_calls``: the response text, the RAG context given to ``@observe``
(``Context``), or else context found in the prompt messages (a ``<context>`` block or a
``Context:``/``Documents:`` section), the other choices when the provider returned several, and the
token log-probabilities when it returned them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmpulse.analyzers.text import Encode

from .consistency import logprob_signals, sample_signals
from .grounding import grounding_signals_many
from .model import HallucinationModel

_TAGGED = re.compile(
    r"<(context|contexts|documents?|knowledge|sources?|retrieved[_ ]?\w*)>(.*?)</\1>", re.IGNORECASE | re.DOTALL
)
_SECTION = re.compile(
    r"^[ \t#*]*(?:context|knowledge|documents?|sources?|retrieved (?:documents|passages|context)|reference text)"
    r"[ \t*]*:[ \t]*(.*?)(?=^[ \t#*]*(?:question|query|user question|task|instructions?|answer)[ \t*]*:|\Z)",
    re.IGNORECASE | re.DOTALL | re.MULTILINE,
)


@dataclass(frozen=True)
class CallContent:
    """What one call captured: the answer, its context (may be empty), other samples and log-probabilities."""

    response: str
    context: str = ""
    samples: tuple[str, ...] = ()
    logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class CallScore:
    """The score of one call, the head that produced it, and every signal computed."""

    score: float
    threshold: float
    flagged: bool
    method: str
    calibrated: bool
    signals: dict[str, float] = field(default_factory=dict)


def _message_texts(messages_json: str) -> list[tuple[str, str]]:
    """(role, text) of each message in a GenAI-semconv messages JSON; [] when it is not one."""
    try:
        messages = json.loads(messages_json) if messages_json else []
    except ValueError:
        return []
    out = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        parts = message.get("parts") or []
        text = "\n".join(
            str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"
        )
        if isinstance(message.get("content"), str):  # plain {"role", "content"} messages
            text = text or message["content"]
        out.append((str(message.get("role", "")), text))
    return out


def context_from_messages(messages_json: str) -> str:
    """Context an application pasted into its prompt: tagged blocks, or a "Context:" section."""
    found: list[str] = []
    for _role, text in _message_texts(messages_json):
        tagged = [body.strip() for _tag, body in _TAGGED.findall(text)]
        if tagged:
            found.extend(tagged)
            continue
        found.extend(m.strip() for m in _SECTION.findall(text) if m.strip())
    return "\n\n".join(found)


def output_choices(messages_json: str) -> list[str]:
    """The text of each output message (one per choice when the provider returned several)."""
    return [text for role, text in _message_texts(messages_json) if role in ("assistant", "") and text.strip()]


def parse_logprobs(value: Any) -> tuple[float, ...]:
    """Token log-probabilities from the span attribute (a JSON list of numbers); () when absent or bad."""
    if not value:
        return ()
    try:
        numbers = json.loads(value) if isinstance(value, str) else value
        return tuple(float(x) for x in numbers if x is not None)
    except (TypeError, ValueError):
        return ()


def call_content(row: dict[str, Any], logprobs: Any = None) -> CallContent:
    """A :class:`CallContent` from an llm_calls row (ResponseText, Context, InputMessages, OutputMessages)."""
    response = str(row.get("ResponseText") or "")
    context = str(row.get("Context") or "") or context_from_messages(str(row.get("InputMessages") or ""))
    choices = output_choices(str(row.get("OutputMessages") or ""))
    samples = tuple(choices[1:]) if len(choices) > 1 else ()
    return CallContent(response=response, context=context, samples=samples, logprobs=parse_logprobs(logprobs))


def call_signals(calls: Sequence[CallContent], encode: Encode | None = None) -> list[dict[str, float]]:
    """Every signal each call allows; the embedding signals batched over all calls."""
    with_context = [i for i, c in enumerate(calls) if c.context.strip() and c.response.strip()]
    pairs = [(calls[i].response, calls[i].context) for i in with_context]
    grounding = dict(zip(with_context, grounding_signals_many(pairs, encode), strict=True))
    out: list[dict[str, float]] = []
    for index, call in enumerate(calls):
        signals: dict[str, float] = grounding[index].as_dict() if index in grounding else {}
        samples = sample_signals(call.response, call.samples, encode) if call.samples else None
        if samples is not None:
            signals.update(samples.as_dict())
        logprobs = logprob_signals(call.logprobs) if call.logprobs else None
        if logprobs is not None:
            signals.update(logprobs.as_dict())
        out.append(signals)
    return out


def score_signals(signals: dict[str, float], model: HallucinationModel) -> CallScore | None:
    """The call's score from the first head that applies; None when no signal could be computed."""
    head = model.head_for(signals)
    if head is None:
        return None
    score = head.score(signals)
    return CallScore(
        score=score,
        threshold=head.threshold,
        flagged=score >= head.threshold,
        method=head.name,
        calibrated=head.calibrated,
        signals={k: v for k, v in signals.items() if math.isfinite(v)},
    )


def score_contents(
    calls: Sequence[CallContent],
    model: HallucinationModel,
    encode: Encode | None = None,
    judges: Sequence[Any] = (),
) -> list[CallScore | None]:
    """Signals and score of every call (None where no head applies): the one path of the analyzer and the API."""
    signals = call_signals(calls, encode)
    for judge in judges:
        judge.add_signals(calls, signals)
    return [score_signals(found, model) for found in signals]
