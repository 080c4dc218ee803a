"""The export thread's pure part: a finished call's record becomes a span with GenAI attributes, cost and
redacted content. Nothing here does I/O; it imports only ``agent.semconv`` and ``agent.store``.

- ``span``: ``enrich(record, ctx) -> FinishedSpan``, the attributes of one span;
- ``capture``: the prompt, response and context a span keeps, redacted and clipped;
- ``prices``: the vendored price table (``model_prices.json``) and the one cost computation;
- ``redaction``: the one redaction engine of the SDK and the receiver (``redaction_presidio``: an optional hook);
- ``providers``: requests, responses and streams of each provider API, and one ``guess_provider``.
"""
