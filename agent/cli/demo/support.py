"""The demo's support bot: retrieval, a simulated model, and the two phases the analyzers compare.

Phase "reference": users ask about the knowledge base; the bot (prompt v1) answers from the passage it
retrieved. Phase "current": a new product line brings questions the knowledge base does not cover
(drift), the new prompt version v2 states facts the passage does not contain in part of its answers
(hallucination), and a few users try to override the bot's instructions (prompt injection). The model
is SIMULATED: it picks the grounded or the made-up answer the scenario asks for; nothing is generated.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any

from llmpulse.agent import attributes, observe

from .corpus import DRIFTED_QUESTIONS, INJECTIONS, KNOWLEDGE_BASE, SYSTEM_PROMPT, Article

REFERENCE_DATASET = "support-faq"
SUPPORT_MODEL = "gpt-4o-mini"
_WORDS = re.compile(r"[a-z0-9]+")
_DRIFTED_ANSWERS = (
    "Hold the reset button for 10 seconds until the light blinks blue, then pair it again in the Acme Home app.",
    "This is covered by the 3-year Acme Home warranty; a technician will replace the part within 48 hours.",
    "Update the device to firmware 5.1.2 from the Acme Home app and restart it twice to clear the error.",
)
_REFUSAL = "I can only help with Acme Cloud questions based on the documentation."


@dataclass(frozen=True)
class Phase:
    """How one phase of the demo behaves."""

    name: str
    prompt_version: str
    drift_share: float = 0.0  # questions about something the knowledge base does not cover
    made_up_share: float = 0.0  # knowledge-base answers with facts the passage does not contain
    injection_share: float = 0.0  # prompts that try to override the instructions


REFERENCE = Phase("reference", "v1")
CURRENT = Phase("current", "v2", drift_share=0.4, made_up_share=0.35, injection_share=0.08)


def item_id(article: Article, question: str) -> str:
    return f"{article.topic}-{article.questions.index(question) + 1}"


def reference_items() -> list[dict[str, str]]:
    """The golden answers (what prompt v1 says) for every knowledge-base question."""
    return [
        {"item_id": item_id(a, q), "input": q, "reference": a.answer, "context": a.passage}
        for a in KNOWLEDGE_BASE
        for q in a.questions
    ]


def _retrieve(question: str) -> Article:
    """The article a question belongs to, else the one sharing the most words (a stand-in for a vector search)."""
    for article in KNOWLEDGE_BASE:
        if question in article.questions:
            return article
    words = set(_WORDS.findall(question.lower()))
    return max(KNOWLEDGE_BASE, key=lambda a: len(words & set(_WORDS.findall((a.passage + " " + a.topic).lower()))))


class SimulatedSupportModel:
    """Answers with the text the scenario chose, with realistic token counts and latency."""

    def __init__(self, rng: random.Random, speed: float = 1.0) -> None:
        self.rng = rng
        self.speed = speed
        self.next_answer = ""  # set by the scenario before each call

    def create(self, *, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.next_answer
        prompt = " ".join(str(m["content"]) for m in messages)
        input_tokens = max(1, len(prompt.split()) * 4 // 3)
        output_tokens = max(1, len(answer.split()) * 4 // 3)
        time.sleep(self.speed * (0.01 + 0.0012 * output_tokens + self.rng.expovariate(1 / 0.01)))
        return {
            "id": f"chatcmpl-sup{self.rng.getrandbits(48):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
        }


class SupportBot:
    """The instrumented RAG bot: a retrieval tool span and an LLM span with the passage as its context."""

    def __init__(self, model: SimulatedSupportModel) -> None:
        self.model = model

        @observe(kind="tool")
        def retrieve(question: str) -> Article:
            return _retrieve(question)

        @observe(kind="llm", prompt_template="support-answer", context_arg="passages")
        def generate(model: str, messages: list[dict[str, Any]], passages: list[str]) -> Any:
            return self.model.create(model=model, messages=messages)

        @observe(kind="chain", name="support_question")
        def ask(question: str, choose: Any) -> str:
            article = retrieve(question)
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Context:\n{article.passage}\n\nQuestion: {question}"},
            ]
            self.model.next_answer = choose(article)
            reply = generate(SUPPORT_MODEL, messages, [article.passage])
            return reply["choices"][0]["message"]["content"]

        self.ask = ask

    def run(self, phase: Phase, calls: int, rng: random.Random) -> dict[str, int]:
        """``calls`` questions in the style of ``phase``; returns how many of each kind were asked."""
        counts = {"grounded": 0, "made_up": 0, "drifted": 0, "injection": 0}
        pairs = [(a, q) for a in KNOWLEDGE_BASE for q in a.questions]
        for index in range(calls):
            roll = rng.random()
            fields: dict[str, Any] = {"prompt_version": phase.prompt_version, "user_id": f"customer-{index % 23}"}
            if roll < phase.injection_share:
                question, kind = rng.choice(INJECTIONS), "injection"
                choose: Any = lambda _article: _REFUSAL  # noqa: E731
            elif roll < phase.injection_share + phase.drift_share:
                question, kind = rng.choice(DRIFTED_QUESTIONS), "drifted"
                choose = lambda _article: rng.choice(_DRIFTED_ANSWERS)  # noqa: E731
            else:
                article, question = rng.choice(pairs)
                made_up = rng.random() < phase.made_up_share
                kind = "made_up" if made_up else "grounded"
                fields["attributes"] = {"llmpulse.reference.item_id": item_id(article, question)}
                choose = lambda a, made_up=made_up: a.made_up if made_up else a.answer  # noqa: E731
            with attributes(**fields):
                self.ask(question, choose)
            counts[kind] += 1
        return counts
