"""DSN parsing and configuration: what a user sees for each wrong value, and that passwords never show."""

from __future__ import annotations

import logging

import pytest
from llmpulse.agent.export.config import ConfigError, build_config
from llmpulse.agent.store.dsn import DSNError, parse_dsn

from llmpulse import agent


def test_dsn_forms() -> None:
    t = parse_dsn("chdb:///var/lib/llmpulse")
    assert (t.kind, t.path, t.database, t.embedded) == ("chdb", "/var/lib/llmpulse", "llmpulse", True)
    assert parse_dsn("chdb://memory").path == ":memory:"
    assert parse_dsn("chdb://memory/mydb").database == "mydb"
    assert parse_dsn("chdb:///x?database=other").database == "other"
    h = parse_dsn("https://bob:s3cret@ch.example.com/analytics")
    assert (h.kind, h.host, h.port, h.username, h.password, h.database, h.secure) == (
        "http",
        "ch.example.com",
        8443,
        "bob",
        "s3cret",
        "analytics",
        True,
    )
    assert parse_dsn("http://localhost").port == 8123
    assert parse_dsn("http://u:p%40ss@h:9000/db").password == "p@ss"
    assert parse_dsn(None).path.endswith(".llmpulse/store")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u:hunter2@h/db", "unsupported scheme 'mysql'"),
        ("localhost:8123", "has no scheme"),
        ("/just/a/path", "has no scheme"),
        ("http://u:hunter2@h:port/db", "port 'port' in store DSN"),
        ("http://u:hunter2@h:99999/db", "not a number from 1 to 65535"),
        ("http://u:hunter2@/db", "names no host"),
        ("http://u:hunter2@h/a/b", "single database name"),
        ("http://u:hunter2@h/bad-name", "database name 'bad-name'"),
        ("http://u:hunter2@h/db?compress=1", "unknown DSN parameter(s) compress"),
        ("chdb://somehost/path", "must be 'memory', '.' or empty"),
        ("chdb:///", "names no directory"),
        ("chdb:///tmp/x?database=1abc", "database name '1abc'"),
    ],
)
def test_bad_dsn_names_the_wrong_part_and_never_the_password(dsn: str, message: str) -> None:
    with pytest.raises(DSNError) as info:
        parse_dsn(dsn)
    text = str(info.value)
    assert message in text
    assert "hunter2" not in text
    if "hunter2" in dsn:
        assert "***" in text


def test_safe_form_masks_password() -> None:
    target = parse_dsn("http://admin:topsecret@db:8123/prod")
    assert target.safe() == "http://***@db:8123/prod"
    assert "topsecret" not in repr(target)


def test_defaults_and_environment(tmp_path) -> None:
    env = {
        "LLMPULSE_DSN": "chdb:///data/store",
        "LLMPULSE_CAPTURE_CONTENT": "off",
        "LLMPULSE_SAMPLE_RATE": "0.25",
        "LLMPULSE_SPOOL_DIR": str(tmp_path / "spool"),
        "OTEL_SERVICE_NAME": "billing",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod, team=ml",
    }
    config = build_config(env)
    assert config.store.path == "/data/store"
    assert config.capture_content is False and config.sample_rate == 0.25
    assert config.service_name == "billing"
    assert config.otlp_endpoint == "http://collector:4318"
    assert config.export == ("clickhouse", "otlp"), "an OTLP endpoint exports as well by default"
    assert config.resource_attributes == {"deployment.environment": "prod", "team": "ml"}
    instead = build_config({**env, "LLMPULSE_EXPORT": "otlp"})
    assert instead.export == ("otlp",) and instead.store is None
    assert build_config(env, sample_rate=1.0, capture_content=True).sample_rate == 1.0


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        ({"LLMPULSE_SAMPLE_RATE": "lots"}, {}, "sample_rate (from $LLMPULSE_SAMPLE_RATE) must be a float number"),
        ({}, {"sample_rate": 1.5}, "sample_rate must be between 0.0 and 1.0, got 1.5"),
        (
            {"LLMPULSE_CAPTURE_CONTENT": "maybe"},
            {},
            "capture_content (from $LLMPULSE_CAPTURE_CONTENT) must be true or false",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, {}, "must be an http(s) URL"),
        ({"LLMPULSE_EXPORT": "kafka"}, {}, "must list one or more of clickhouse, otlp"),
        ({"LLMPULSE_EXPORT": "otlp"}, {}, "includes otlp but no endpoint is set"),
        ({"LLMPULSE_BATCH_SIZE": "0"}, {}, "batch_size (from $LLMPULSE_BATCH_SIZE) must be at least 1"),
        ({}, {"batch_size": 500, "max_queue_size": 100}, "must not be larger than max_queue_size"),
        ({"LLMPULSE_DSN": "postgres://x:pw@h/db"}, {}, "dsn (from $LLMPULSE_DSN): unsupported scheme"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, {}, "must be key=value pairs"),
        ({}, {"redact": "not callable"}, "redact must be a callable"),
        ({}, {"service_name": "  "}, "service_name must not be empty"),
        ({}, {"prices": {"gpt-4o": {"input_per_mtok": "cheap"}}}, "prices"),
        ({}, {"flush_interval": float("nan")}, "flush_interval must be a number"),
    ],
)
def test_bad_configuration_messages(env, kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(env, **kwargs)
    assert message in str(info.value)


def test_configure_raises_for_bad_values_and_keeps_running_pipeline(configured) -> None:
    before = agent._state.pipeline
    with pytest.raises(ConfigError):
        agent.configure(sample_rate=7)
    assert agent._state.pipeline is before, "a rejected configure() leaves the working pipeline alone"


def test_second_embedded_path_in_one_process_is_a_clear_error(configured, tmp_path) -> None:
    before = agent._state.pipeline
    with pytest.raises(ConfigError, match="one chDB path in its lifetime"):
        agent.configure(f"chdb://{tmp_path}/other", spool_dir=str(tmp_path / "s"))
    assert agent._state.pipeline is before


def test_password_never_logged(caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG, logger="llmpulse")
    agent.configure(
        "http://admin:pw-do-not-log@127.0.0.1:1/db",
        spool_dir=str(tmp_path / "spool"),
        flush_interval=0.05,
    )
    try:

        @agent.observe
        def f() -> int:
            return 1

        f()
        agent.flush(5)
        assert agent.stats().spooled == 1
    finally:
        agent.shutdown(2)
    assert "pw-do-not-log" not in caplog.text
