"""The shared contract of everything that reads or writes the store; it imports nothing else of llmpulse.

- ``dsn``: where the data lives (``parse_dsn``, ``StoreTarget``, ``DSNError``);
- ``client``: opening a client for a command (``open_client``, ``StoreUnavailable``, ``store_target``);
- ``rows``: the one ``Batch`` type and the row encoding (``RowBuffer``, ``rows_to_batch``);
- ``insert``: ``insert_batch``, ``insert_rows`` and what a refused insert means (``rejects_data``);
- ``writer``: ``ClickHouseWriter``, one client with the schema applied before its first insert;
- ``schema``: every table, declared once, as versioned migrations (``apply``, ``LLM_CALLS_COLUMNS``, ...);
- ``duration``: the one grammar of durations (``30s``, ``5m``, ``1h``, ``7d``, ``1w``) of every command
  and setting;
- ``fastjson``: JSON in C with a total fallback.
"""
