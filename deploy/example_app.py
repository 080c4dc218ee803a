"""An instrumented app that sends its spans over OTLP to the llmpulse sidecar (docker-compose example).

It calls the built-in simulated chat model (no API key needed) once a second; point the OpenAI
client at a real endpoint to instrument real calls the same way.
"""

from __future__ import annotations

import itertools
import time

from llmpulse.agent import configure, observe
from llmpulse.agent.cli.demo.app import SimulatedChatModel

configure()  # OTEL_EXPORTER_OTLP_ENDPOINT and LLMPULSE_EXPORT=otlp come from the environment
model = SimulatedChatModel(seed=11)


@observe(kind="llm", prompt_template="support-answer", prompt_version="v3")
def answer(question: str, model_name: str) -> dict:
    return model.create(model=model_name, messages=[{"role": "user", "content": question}], max_tokens=200)


QUESTIONS = ["How do I reset my password?", "What is your refund policy?", "Can I change my plan?"]
for question, model_name in zip(itertools.cycle(QUESTIONS), itertools.cycle(["gpt-4o-mini", "gpt-4o"])):
    try:
        answer(question, model_name)
    except Exception as exc:  # the simulated model raises rate-limit errors now and then, like a real one
        print(f"call failed: {exc}")
    time.sleep(1.0)
