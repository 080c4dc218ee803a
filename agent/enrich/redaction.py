"""Redaction of captured content before it is stored: one engine for the SDK and the OTLP receiver.

Built-in rules remove provider keys and tokens, secrets named by their key (in dicts and in ``key=value``
or ``"key": "value"`` text), credentials in URLs, PEM private keys and e-mail addresses; credit cards,
IBANs, phone numbers and IP addresses are opt-in categories. User hooks (``str -> str``) run after them.
:meth:`Redaction.value` walks captured structures (messages, tool arguments, results) string by string.
Redaction runs on the export thread (SDK) or the decode threads (receiver), never on the app's call path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

Redactor = Callable[[str], str]

REDACTED_KEY = "[REDACTED_API_KEY]"
REDACTED_SECRET = "[REDACTED_SECRET]"
REDACTED_EMAIL = "[REDACTED_EMAIL]"
REDACTED_PRIVATE_KEY = "[REDACTED_PRIVATE_KEY]"
REDACTED_CARD = "[REDACTED_CREDIT_CARD]"
REDACTED_IBAN = "[REDACTED_IBAN]"
REDACTED_PHONE = "[REDACTED_PHONE]"
REDACTED_IP = "[REDACTED_IP]"

CATEGORIES = frozenset({"credit_card", "iban", "phone", "ip"})

# --- secrets named by their key --------------------------------------------------------------------

# Words that make a key name sensitive, and qualifiers after them that make it harmless again
# ("token_count", "password_policy", "max_tokens" is not "token").
_SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "credential",
        "credentials",
        "privatekey",
        "accesskey",
        "secretkey",
        "signature",
        "sig",
    }
)
_SENSITIVE_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("set", "cookie")}
)
_HARMLESS_AFTER = frozenset(
    {
        "count",
        "counts",
        "type",
        "limit",
        "usage",
        "url",
        "uri",
        "endpoint",
        "name",
        "length",
        "len",
        "policy",
        "required",
        "enabled",
        "file",
        "path",
        "expires",
        "expiry",
        "ttl",
        "id",
        "kind",
        "method",
        "mode",
    }
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when a key names a secret (``password``, ``AWS_SECRET_ACCESS_KEY``, ``x-api-key``, ``Cookie``)."""
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    last = len(words) - 1
    for i, word in enumerate(words):
        nxt = words[i + 1] if i < last else None
        if word in _SENSITIVE_WORDS and nxt not in _HARMLESS_AFTER:
            return True
        if (
            nxt is not None
            and (word, nxt) in _SENSITIVE_PAIRS
            and (i + 1 == last or words[i + 2] not in _HARMLESS_AFTER)
        ):
            return True
    return False


_KEY_WORDS = r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|authorization|auth|cookie|credentials?|private[_\-]?key|access[_\-]?key|signature)"
# key=value, key: value, "key": "value", KEY_SECRET=...; the key is checked by is_sensitive_key.
# The key is matched whole and atomically (a lookahead plus a back-reference: Python 3.10 has no possessive
# quantifiers), so a long run like "tokentoken…" is scanned once, not once per keyword inside it.
_ASSIGNMENT = re.compile(
    r"(?i)(?<![A-Za-z0-9_.\-])(?=[A-Za-z0-9_.\-]*?" + _KEY_WORDS + r")(?=([A-Za-z0-9_.\-]+))\1"
    r"(\\?[\"']?\s*[:=]\s*)"
    r"(?:(\\?\")((?:[^\"\\]|\\[^\"])*)\\?\"|(')([^']*)'|(?!\[REDACTED)((?:(?:bearer|basic|token|digest)\s+)?[^\s,;&'\"}\])<>]{3,}))"
)

# --- formats ---------------------------------------------------------------------------------------

# Provider key shapes: OpenAI sk-/sk-proj-, Anthropic sk-ant-, Stripe sk_live_/rk_live_, Google AIza, AWS
# AKIA/ASIA, GitHub ghp_/gho_/ghs_/ghu_/ghr_/github_pat_, Slack xox*, Hugging Face hf_, JWTs, Bearer/Basic.
_KEY_PATTERNS = (
    re.compile(r"\b(?:sk|rk)[-_](?:ant-|proj-|live_|test_|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"),
    # a token has a digit or a symbol: "Bearer instruments" and "Basic understanding" are prose
    re.compile(r"(?i:\b(?:bearer|basic|token))\s+(?=[A-Za-z0-9_\-.=+/~]*[0-9_\-.=+/~])[A-Za-z0-9_\-.=+/~]{8,}"),
)
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S
)
_URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):([^\s/?#@]+)@")
# Unicode local parts and domains (\w), full-width and percent-encoded @, full-width and ideographic dots.
_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w.%+\-]*\w(?:@|\uff20|%40)[\w\-]+(?:[.\uff0e\u3002\uff61][\w\-]+)*[.\uff0e\u3002\uff61](?:[^\W\d_]{2,}|xn--[\w\-]+)\b"
)

# --- opt-in categories -----------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w\-])\d(?:[ \-]?\d){12,18}(?![\w\-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]\d{2,4}){1,4}(?![\w\-:])")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


_DATE = re.compile(r"\d{4}[./\-]\d{2}[./\-]\d{2}|\d{2}[./\-]\d{2}[./\-]\d{4}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return REDACTED_CARD if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    compact = match.group().replace(" ", "")
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return REDACTED_IBAN if int(number) % 97 == 1 else match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(ch.isdigit() for ch in text)
    if _DATE.search(text):  # 2024-01-15, also when a time follows
        return text
    # 8-15 digits (E.164) with a + or at least two separators: dates and versions have fewer digits
    if 8 <= digits <= 15 and (text.startswith("+") or "(" in text or sum(ch in " .-" for ch in text) >= 2):
        return REDACTED_PHONE
    return text


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return match.group()
    return REDACTED_IP


# --- engine ----------------------------------------------------------------------------------------

_MARKERS = (
    "@",
    "\uff20",
    "%40",
    "sk-",
    "sk_",
    "rk_",
    "AIza",
    "AKIA",
    "ASIA",
    "gh",
    "xox",
    "hf_",
    "eyJ",
    "-----BEGIN",
    "://",
)
_LOWER_MARKERS = ("key", "token", "secret", "pass", "pwd", "bearer", "basic", "auth", "cookie", "credential", "sig")


def may_hold_secret(text: str) -> bool:
    """False when no built-in rule can match: substrings every rule needs are absent (the common case)."""
    for marker in _MARKERS:
        if marker in text:
            return True
    lowered = text.lower()
    for marker in _LOWER_MARKERS:
        if marker in lowered:
            return True
    return False


def _assignment(match: re.Match[str]) -> str:
    key = match.group(1)
    if not is_sensitive_key(key):
        return match.group()
    sep = match.group(2)
    quote = match.group(3)
    if quote is not None:
        return f"{key}{sep}{quote}{REDACTED_SECRET}{quote}"
    if match.group(5) is not None:
        return f"{key}{sep}'{REDACTED_SECRET}'"
    return f"{key}{sep}{REDACTED_SECRET}"


def redact_builtin(text: str) -> str:
    """Remove keys, tokens, named secrets, URL passwords, private keys and e-mail addresses."""
    if not text or not may_hold_secret(text):
        return text
    if "-----BEGIN" in text:
        text = _PEM.sub(REDACTED_PRIVATE_KEY, text)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(REDACTED_KEY, text)
    text = _ASSIGNMENT.sub(_assignment, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED_SECRET}@", text)
    return _EMAIL.sub(REDACTED_EMAIL, text)


def _redact_categories(text: str, categories: Collection[str]) -> str:
    if "credit_card" in categories:
        text = _CARD.sub(_card, text)
    if "iban" in categories:
        text = _IBAN.sub(_iban, text)
    if "ip" in categories:
        text = _IPV4.sub(REDACTED_IP, text)
        if "::" in text or text.count(":") >= 7:
            text = _IPV6.sub(_ipv6, text)
    if "phone" in categories:
        text = _PHONE.sub(_phone, text)
    return text


_DIGIT = re.compile(r"\d")
_NESTED = (dict, list, tuple)


class Redaction:
    """Built-in rules (optional), opt-in categories, then the user's hooks: one engine for SDK and receiver."""

    def __init__(self, hooks: Iterable[Redactor] = (), *, builtin: bool = True, categories: Iterable[str] = ()) -> None:
        self.categories = frozenset(categories)
        unknown = self.categories - CATEGORIES
        if unknown:
            raise ValueError(f"unknown redaction categories {sorted(unknown)}; known: {sorted(CATEGORIES)}")
        self.builtin = builtin
        self._hooks: tuple[Redactor, ...] = tuple(hooks)
        self.builtin_only = builtin and not self._hooks and not self.categories

    def is_clean(self, text: str) -> bool:
        """True when no rule can change ``text``: the cheap pre-check that keeps the common case fast."""
        if self._hooks:
            return False
        if self.builtin and may_hold_secret(text):
            return False
        return not (self.categories and _DIGIT.search(text))

    def __call__(self, text: str) -> str:
        if self.is_clean(text):
            return text
        if self.builtin:
            text = redact_builtin(text)
        if self.categories:
            text = _redact_categories(text, self.categories)
        for step in self._hooks:
            text = step(text)
            if not isinstance(text, str):
                raise TypeError(f"redaction hook {step!r} returned {type(text).__name__}, expected str")
        return text

    def value(self, node: Any, _depth: int = 0) -> Any:
        """A copy of a captured structure with every string redacted and the values of secret keys removed."""
        kind = type(node)
        if kind is str:
            return self(node)
        if _depth > 64:
            return node
        if kind is dict or isinstance(node, Mapping):
            out = {}
            for key, item in node.items():
                if type(key) is str and self.builtin and item is not None and type(item) is not bool:
                    if is_sensitive_key(key):
                        out[key] = REDACTED_SECRET
                        continue
                out[key] = self.value(item, _depth + 1) if type(item) in _STR_OR_NESTED else item
            return out
        if kind is list or kind is tuple:
            return [self.value(item, _depth + 1) if type(item) in _STR_OR_NESTED else item for item in node]
        return node


_STR_OR_NESTED = (str, dict, list, tuple)
