"""The provider of a model name: the one rule for every span the SDK builds (request model, then response model)."""

from __future__ import annotations

_OPENAI_PREFIXES = ("gpt-", "chatgpt-", "text-embedding-", "davinci", "babbage", "omni-moderation", "gpt-image")


def guess_provider(model: str | None) -> str | None:
    """``openai`` or ``anthropic`` when the name leaves no doubt, else None.

    ``claude-*`` is Anthropic's; ``gpt-*`` (``gpt-oss-*`` included: OpenAI's open-weights models),
    ``chatgpt-*``, ``text-embedding-*``, ``omni-moderation-*``, ``o1``/``o3-mini``/... are OpenAI's. A name
    with a ``/`` counts only when it names the provider first (``openai/gpt-4o``); ``meta-llama/...`` through
    some gateway is not ours to guess.
    """
    if not model:
        return None
    low = model.lower()
    if "/" in low:
        head = low.partition("/")[0]
        return head if head in ("openai", "anthropic") else None
    if low.startswith("claude-"):
        return "anthropic"
    if low.startswith(_OPENAI_PREFIXES):
        return "openai"
    if len(low) >= 2 and low[0] == "o" and low[1].isdigit() and (len(low) == 2 or low[2] == "-"):
        return "openai"  # o1, o3-mini, o4-mini-2025-04-16
    return None
