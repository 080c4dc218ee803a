"""The sidecar process, ``llmpulse agent``: it imports anything it needs, and nothing imports it.

- ``server``: ``Sidecar``, the process (HTTP endpoints, lifecycle);
- ``receiver``: the OTLP/HTTP receiver (limits, auth, status answers); ``otlp_decode`` and ``otlp_logs``:
  received OTLP bodies to store rows;
- ``conventions``: other GenAI conventions (OpenInference, OpenLLMetry, OpenLIT) given the semconv
  attributes; ``genai_content``: content from messages and events in the semconv shape; ``join``: GenAI
  events and retrieval documents joined to their LLM spans; ``recovery``: spans a crash left waiting;
- ``wal`` and ``durable``: the write-ahead log, and the sink that answers 200 once a request is in it;
- ``schedule``: collector ticks and scheduled analyses; ``selfmetrics``: its own ``/metrics``;
- ``config``: its settings (flags over environment over a YAML file).
"""
