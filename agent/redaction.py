"""Redaction of captured content before it leaves the process.

Built-in rules remove API keys and e-mail addresses; user hooks (``str -> str``) run after them.
Redaction runs on the export thread, never on the app's call path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Redactor = Callable[[str], str]

# Provider key shapes (OpenAI sk-/sk-proj-, Anthropic sk-ant-, Google AIza, AWS AKIA, GitHub ghp_/github_pat_,
# Slack xox*, Hugging Face hf_) plus "Bearer <token>" and key=value pairs that name a secret.
_KEY_PATTERNS = (
    re.compile(r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"(?i)\bBearer\s+[A-Za-z0-9_\-\.=]{16,}"),
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(api[_-]?key|secret|password|passwd|access[_-]?token|auth[_-]?token)(\s*[:=]\s*)(['\"]?)[^\s'\",;]{6,}\3"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")

REDACTED_KEY = "[REDACTED_API_KEY]"
REDACTED_SECRET = "[REDACTED_SECRET]"
REDACTED_EMAIL = "[REDACTED_EMAIL]"


def may_hold_secret(text: str) -> bool:
    """False when no built-in rule can match: substrings every rule needs are absent (the common case)."""
    if (
        "@" in text
        or "sk-" in text
        or "AIza" in text
        or "AKIA" in text
        or "ghp_" in text
        or "gho_" in text
        or "ghs_" in text
        or "ghu_" in text
        or "github_pat_" in text
        or "xox" in text
        or "hf_" in text
    ):
        return True
    lowered = text.lower()
    return "key" in lowered or "token" in lowered or "secret" in lowered or "passw" in lowered or "bearer" in lowered


def redact_builtin(text: str) -> str:
    """Remove API keys, secrets in key=value form, and e-mail addresses."""
    if not text or not may_hold_secret(text):
        return text
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED_KEY, text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED_SECRET}", text)
    return _EMAIL.sub(REDACTED_EMAIL, text)


class Redaction:
    """Built-in rules (optional) followed by the user's hooks."""

    def __init__(self, hooks: Iterable[Redactor] = (), *, builtin: bool = True) -> None:
        self._steps: tuple[Redactor, ...] = ((redact_builtin,) if builtin else ()) + tuple(hooks)
        self.builtin_only = builtin and len(self._steps) == 1

    def __call__(self, text: str) -> str:
        for step in self._steps:
            text = step(text)
            if not isinstance(text, str):
                raise TypeError(f"redaction hook {step!r} returned {type(text).__name__}, expected str")
        return text
