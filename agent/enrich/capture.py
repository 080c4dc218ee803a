"""Content capture: the prompt, response, RAG context and tool values a span keeps, each redacted and clipped.

Runs on the export thread inside ``span.enrich`` when content capture is on. The common case is cheap:
captured messages are serialized once and scanned once; only text that may hold a secret is walked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmpulse.agent import semconv as sc
from llmpulse.agent.store import fastjson

from .providers import ParsedRequest, ParsedResponse
from .redaction import Redaction

MAX_CONTENT_CHARS = 100_000


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return fastjson.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _context_text(value: Any) -> str | None:
    """RAG context as text: a string, or documents (strings, dicts with content/text, LangChain docs)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, (list, tuple)):
        parts = []
        for doc in value:
            if isinstance(doc, str):
                parts.append(doc)
            elif isinstance(doc, Mapping):
                parts.append(str(doc.get("content") or doc.get("text") or doc.get("page_content") or _text(doc)))
            else:
                parts.append(str(getattr(doc, "page_content", None) or getattr(doc, "text", None) or doc))
        return "\n\n".join(parts)
    return str(value)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…[truncated]"


def _redact_json(value: Any, redaction: Redaction) -> tuple[str, bool]:
    """Serialize captured messages with every string redacted (secret keys too); also say whether nothing matched.

    Fast path: serialize first and scan the JSON once; only text that may hold a secret takes the walk.
    """
    text = fastjson.dumps(value)
    if redaction.is_clean(text):
        return _clip(text), True
    return _clip(fastjson.dumps(redaction.value(value))), False


def _redact_text(value: Any, redaction: Redaction) -> str:
    """A captured value (tool arguments, results) as text, its strings and secret-keyed values redacted."""
    text = _text(value)
    if redaction.is_clean(text):
        return text
    if type(value) in _CONTAINERS:
        text = _text(redaction.value(value))
    return redaction(text)  # objects serialized by repr are scanned as text


_CONTAINERS = (dict, list, tuple)


def capture_content(
    attrs: dict[str, Any],
    record: Any,
    arguments: Mapping[str, Any],
    fields: Mapping[str, Any],
    req: ParsedRequest | None,
    resp: ParsedResponse | None,
    is_llm: bool,
    redaction: Redaction,
) -> None:
    opts = record.options
    context = fields.get("rag_context")
    if context is None and opts.context_arg:
        context = arguments.get(opts.context_arg)
    context_text = _context_text(context)
    if context_text:
        attrs[sc.RAG_CONTEXT] = _clip(redaction(context_text))
    if is_llm and req is not None:
        messages = req.input_messages
        if messages is None:
            prompt = next(
                (v for k, v in arguments.items() if isinstance(v, str) and k not in (opts.context_arg, "model")), None
            )
            if prompt is not None:
                messages = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
        if messages:
            attrs[sc.GEN_AI_INPUT_MESSAGES] = _redact_json(messages, redaction)[0]
        if req.system_instructions:
            attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = _redact_json(req.system_instructions, redaction)[0]
        if resp is not None:
            output_clean = False
            if resp.output_messages:
                attrs[sc.GEN_AI_OUTPUT_MESSAGES], output_clean = _redact_json(resp.output_messages, redaction)
            if resp.output_text:
                # when the text appears verbatim in messages just found clean, it is clean too
                clean = output_clean and resp.output_text in attrs[sc.GEN_AI_OUTPUT_MESSAGES]
                attrs[sc.OUTPUT_TEXT] = _clip(resp.output_text if clean else redaction(resp.output_text))
            if resp.token_logprobs:
                attrs[sc.TOKEN_LOGPROBS] = fastjson.dumps([round(x, 4) for x in resp.token_logprobs[:4096]])
        return
    if arguments:
        shown = {k: v for k, v in arguments.items() if k != opts.context_arg}
        if shown:
            attrs["llmpulse.input"] = _clip(_redact_text(shown, redaction))
    if record.error is None:
        output = record.result
        if record.chunks is not None:
            output = "".join(c for c in record.chunks if isinstance(c, str)) or record.chunks
        if output is not None:
            attrs["llmpulse.output"] = _clip(_redact_text(output, redaction))
