"""The export thread: from the app's records (or the sidecar's rows) to the store and OTLP.

- ``pipeline``: ``Pipeline``, the wiring of one ``configure()`` or one sidecar;
- ``batcher``: the bounded queue and the export thread (the OpenTelemetry BatchSpanProcessor's shape);
- ``sink``: the ``Sink`` protocol every destination follows; ``clickhouse_sink`` (with ``delivery``:
  retry, ``spool``, ordered replay; ``intake``: the sidecar's ready rows) and ``otlp_sink``;
- ``encode``: spans and feedback as store rows; ``config``: the settings; ``stats``: the counters.
"""
