"""Presidio as an optional redaction hook (issue 10, defect 4): its pattern recognizers on a blank spaCy pipeline.

Presidio's NER (names, places) needs a spaCy model, which the package registry here does not carry, so
only the pattern and checksum recognizers are exercised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("presidio_analyzer", reason="the optional extra is not installed: pip install 'llmpulse[presidio]'")

from llmpulse.agent import observe
from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.enrich.redaction_presidio import presidio_redactor

from llmpulse import agent


@pytest.fixture(scope="module")
def hook():
    return presidio_redactor()


def test_pattern_recognizers_redact_through_the_same_interface(hook) -> None:
    redaction = Redaction([hook], builtin=False)  # Presidio alone, to see what it finds
    text = (
        "card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00, mail jane@example.com, "
        "call +1 415-555-2671, host 192.168.1.10"
    )
    out = redaction(text)
    for found in ("4111 1111", "DE89", "jane@example.com", "415-555-2671", "192.168.1.10"):
        assert found not in out, out
    for label in ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"):
        assert f"[REDACTED_{label}]" in out, out


def test_checksums_and_ordinary_text_are_respected(hook) -> None:
    text = "What is the capital of France? Version 1.2.3 shipped on 2024-01-15; card 4111 1111 1111 1112."
    assert hook(text) == text, "a card number failing Luhn, dates and versions are kept"


def test_runs_after_the_builtin_rules_in_configure(
    hook, store_dsn: str, database: str, tmp_path: Path, collector: Any
) -> None:
    agent.configure(
        store_dsn,
        database=database,
        spool_dir=str(tmp_path / "spool"),
        flush_interval=0.05,
        span_exporters=[collector],
        redact=[hook],
    )

    @observe(model="gpt-4o")
    def ask(question: str) -> str:
        return "ok"

    ask("pay with 4111 1111 1111 1111 using key sk-proj-abcdefghijklmnopqrstuvwx1234")
    try:
        assert agent.flush()
    finally:
        agent.shutdown(10)
    stored = json.dumps(collector.one("chat gpt-4o").attributes)
    assert "4111 1111" not in stored and "[REDACTED_CREDIT_CARD]" in stored
    assert "sk-proj-" not in stored and "[REDACTED_API_KEY]" in stored


def test_unknown_entities_and_missing_models_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown Presidio entities"):
        presidio_redactor(entities=["NOT_AN_ENTITY"])
    with pytest.raises(ValueError, match="not installed"):
        presidio_redactor(model="en_core_web_nonexistent")


def test_the_sdk_never_imports_presidio() -> None:
    code = "import llmpulse.agent, llmpulse.agent.enrich.redaction, sys; print('presidio_analyzer' in sys.modules, 'spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
