"""Rated calls as fine-tuning records (SFT, DPO) or plain JSONL, with a count of what was left out and why.

A call's score is the mean of its feedback scores. It is *accepted* at ``min_score`` or more and
*rejected* at ``max_score`` or less (defaults 1 and 0: a thumbs-up recorded as 1, a thumbs-down as 0
or -1; for 1-5 stars pass e.g. 4 and 2).

- **SFT** (OpenAI chat fine-tuning JSONL): ``{"messages": [...the call's messages..., the answer]}``
  for each accepted call; an example identical to one already written is left out.
- **DPO** (TRL's conversational preference format): ``{"prompt": [...], "chosen": [answer],
  "rejected": [answer]}``. Calls have the *same input* when their conversations (system prompt,
  history and last message, after the redaction applied at capture) are equal as stored, text for
  text; model and parameters may differ. Within one input, distinct accepted answers (best first) are
  paired with distinct rejected answers (worst first), the shorter list reused in order, so every
  answer appears in a pair; an answer rated both ways is left out.
- **jsonl**: every rated call with its messages, answer and feedback rows.

Calls with tool calls are left out of SFT and DPO: OpenAI's format then needs the tool definitions,
which are not stored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmpulse.analyzers.io.feedback import RatedCall

from . import messages as msg

FORMATS = ("sft", "dpo", "jsonl")


@dataclass
class Export:
    """Records to write and, per reason, how many calls (or inputs, for DPO) were left out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Scores:
    """What counts as accepted (score >= min_score) and as rejected (score <= max_score)."""

    min_score: float = 1.0
    max_score: float = 0.0

    def __post_init__(self) -> None:
        for name in ("min_score", "max_score"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number")
        if self.max_score >= self.min_score:
            raise ValueError(
                f"--max-score ({self.max_score:g}) must be below --min-score ({self.min_score:g}): "
                "an answer cannot be both accepted and rejected"
            )


@dataclass(frozen=True)
class Example:
    """A usable call: its conversation, its answer and its score."""

    call: RatedCall
    prompt: list[dict[str, Any]]
    answer: dict[str, Any]
    score: float


def usable(call: RatedCall, skipped: Counter[str], *, tools: bool = False) -> Example | None:
    """The call as an example, or None with the reason counted in ``skipped``."""
    score = call.score
    if score is None:
        skipped["feedback without a score (a label or comment only)"] += 1
        return None
    if call.status == "Error":
        skipped["failed call (no answer)"] += 1
        return None
    try:
        prompt = msg.conversation(call.input_messages, call.system_instructions)
        answer = msg.answer(call.output_messages, call.response_text)
    except msg.Unsupported as exc:
        skipped[f"content OpenAI's chat format cannot hold ({exc})"] += 1
        return None
    if not prompt:
        skipped["no captured input (content capture off?)"] += 1
        return None
    if answer is None:
        skipped["no captured answer (content capture off?)"] += 1
        return None
    if not tools and (msg.has_tool_calls(prompt) or msg.has_tool_calls([answer])):
        skipped["tool calls (the tool definitions are not stored)"] += 1
        return None
    return Example(call, prompt, answer, score)


def sft(calls: Sequence[RatedCall], scores: Scores) -> Export:
    """OpenAI chat fine-tuning records of the accepted calls."""
    out = Export()
    seen: set[str] = set()
    for call in calls:
        example = usable(call, out.skipped)
        if example is None:
            continue
        if example.score < scores.min_score:
            out.skipped[f"score below --min-score {scores.min_score:g}"] += 1
            continue
        conversation = [*example.prompt, example.answer]
        text = msg.key(conversation)
        if text in seen:
            out.skipped["the same example again"] += 1
            continue
        seen.add(text)
        out.records.append({"messages": conversation})
    return out


def dpo(calls: Sequence[RatedCall], scores: Scores) -> Export:
    """Preference pairs from accepted and rejected answers to the same input."""
    out = Export()
    by_input: dict[str, list[Example]] = {}
    for call in calls:
        example = usable(call, out.skipped)
        if example is None:
            continue
        if scores.max_score < example.score < scores.min_score:
            out.skipped["score between --max-score and --min-score (neither accepted nor rejected)"] += 1
            continue
        by_input.setdefault(msg.key(example.prompt), []).append(example)
    for examples in by_input.values():
        chosen = _distinct(e for e in examples if e.score >= scores.min_score)
        rejected = _distinct(e for e in examples if e.score <= scores.max_score)
        both = set(chosen) & set(rejected)
        if both:
            out.skipped["an answer rated both ways for its input"] += len(both)
        best = sorted(
            (e for k, e in chosen.items() if k not in both), key=lambda e: (-e.score, -e.call.time.timestamp())
        )
        worst = sorted(
            (e for k, e in rejected.items() if k not in both), key=lambda e: (e.score, -e.call.time.timestamp())
        )
        if not best or not worst:
            if best or worst:
                reason = "accepted" if best else "rejected"
                out.skipped[f"inputs with only {reason} answers (no opposite feedback on the same input)"] += 1
            continue
        for index in range(max(len(best), len(worst))):
            out.records.append(
                {
                    "prompt": best[0].prompt,
                    "chosen": [best[index % len(best)].answer],
                    "rejected": [worst[index % len(worst)].answer],
                }
            )
    return out


def _distinct(examples: Any) -> dict[str, Example]:
    """One example per distinct answer, the best-scored (then latest) first kept."""
    found: dict[str, Example] = {}
    for example in examples:
        text = msg.key([example.answer])
        kept = found.get(text)
        if kept is None or (example.score, example.call.time) > (kept.score, kept.call.time):
            found[text] = example
    return found


def plain(calls: Sequence[RatedCall]) -> Export:
    """Every rated call with its conversation, answer, score and feedback rows (nothing left out)."""
    out = Export()
    for call in calls:
        try:
            prompt = msg.conversation(call.input_messages, call.system_instructions)
            answer = msg.answer(call.output_messages, call.response_text)
        except msg.Unsupported:
            prompt, answer = msg.parse(call.input_messages), None
        out.records.append(
            {
                "trace_id": call.trace_id,
                "span_id": call.span_id,
                "time": call.time.isoformat(),
                "service": call.service,
                "model": call.model,
                "prompt_template": call.prompt_template,
                "prompt_version": call.prompt_version,
                "session_id": call.session_id,
                "user_id": call.user_id,
                "status": call.status,
                "messages": prompt,
                "answer": answer,
                "context": call.context,
                "score": call.score,
                "feedback": [
                    {
                        "time": f.time.isoformat(),
                        "name": f.name,
                        "score": f.score,
                        "label": f.label,
                        "comment": f.comment,
                        "source": f.source,
                    }
                    for f in call.feedback
                ],
            }
        )
    return out


def best_answers(calls: Sequence[RatedCall], min_score: float) -> Export:
    """For golden references: per distinct prompt text, the accepted call with the best score (then the latest).

    Records are the chosen :class:`RatedCall` objects; the quality analyzer matches a call to a reference
    by its exact prompt text, so that is the key.
    """
    out = Export()
    best: dict[str, RatedCall] = {}
    for call in calls:
        score = call.score
        if score is None:
            out.skipped["feedback without a score (a label or comment only)"] += 1
        elif score < min_score:
            out.skipped[f"score below --min-score {min_score:g}"] += 1
        elif call.status == "Error" or not call.response_text.strip():
            out.skipped["no captured answer text"] += 1
        elif not call.prompt_text.strip():
            out.skipped["no captured prompt text"] += 1
        else:
            key = call.prompt_text.strip()
            kept = best.get(key)
            if kept is not None:
                out.skipped["a better or later answer to the same prompt kept"] += 1
            if kept is None or (score, call.time) > (kept.score or 0.0, kept.time):
                best[key] = call
    out.records = list(best.values())  # type: ignore[arg-type]
    return out


def build(fmt: str, calls: Sequence[RatedCall], scores: Scores) -> Export:
    if fmt == "sft":
        return sft(calls, scores)
    if fmt == "dpo":
        return dpo(calls, scores)
    if fmt == "jsonl":
        return plain(calls)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
