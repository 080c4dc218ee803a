"""``llmpulse agent`` settings: precedence, validation messages, YAML file errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from llmpulse.agent.export.config import ConfigError
from llmpulse.agent.sidecar.config import ScrapeTarget, build_sidecar_config, parse_duration


def test_defaults() -> None:
    config = build_sidecar_config({}, environ={})
    assert (config.host, config.port, config.gpu, config.gpu_interval) == ("0.0.0.0", 4318, "auto", 5.0)
    assert config.scrape == () and config.auth_token is None and config.analyze_every == 0
    assert config.pipeline.export == ("clickhouse",)
    assert config.pipeline.store is not None and config.pipeline.store.embedded


def test_flags_over_environment_over_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "port: 9000\ngpu: off\ngpu-interval: 2s\nscrape:\n  - http://vllm:8000/metrics\n  - url: http://tgi:9000/metrics\n    engine: tgi\n    model: llama-3-8b\n"
    )
    config = build_sidecar_config({"port": "9100"}, environ={"LLMPULSE_GPU": "on"}, config_file=str(path))
    assert config.port == 9100  # flag
    assert config.gpu == "on"  # environment over file
    assert config.gpu_interval == 2.0  # file
    assert config.scrape == (
        ScrapeTarget("http://vllm:8000/metrics", "auto"),
        ScrapeTarget("http://tgi:9000/metrics", "tgi", "llama-3-8b"),
    )


def test_config_file_from_environment_and_comma_separated_targets(tmp_path: Path) -> None:
    path = tmp_path / "a.yml"
    path.write_text("analyze_every: 1h\n")
    environ = {"LLMPULSE_AGENT_CONFIG": str(path), "LLMPULSE_SCRAPE": "http://a:1/metrics, http://b:2/metrics"}
    config = build_sidecar_config({}, environ=environ)
    assert config.analyze_every == 3600
    assert [t.url for t in config.scrape] == ["http://a:1/metrics", "http://b:2/metrics"]


def test_an_otlp_endpoint_in_the_environment_does_not_make_the_sidecar_forward_to_itself() -> None:
    config = build_sidecar_config({}, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"})
    assert config.pipeline.export == ("clickhouse",)


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"port": "http"}, {}, "port (from --port) must be a whole number, got 'http'"),
        ({}, {"LLMPULSE_AGENT_PORT": "70000"}, "port (from $LLMPULSE_AGENT_PORT) must be between 0 and 65535"),
        ({"gpu": "maybe"}, {}, "gpu (from --gpu) must be one of auto, on, off, got 'maybe'"),
        ({"gpu_interval": "fast"}, {}, "gpu_interval (from --gpu-interval) must be a duration such as 5s"),
        ({"gpu_interval": "0s"}, {}, "gpu_interval (from --gpu-interval) must be more than 0"),
        ({}, {"LLMPULSE_SCRAPE": "vllm:8000"}, "scrape (from $LLMPULSE_SCRAPE) must list http(s) URLs"),
        ({"scrape_engine": "triton"}, {}, "scrape_engine (from --scrape-engine) must be one of auto, vllm, tgi"),
        ({"auth_token": "two words"}, {}, "auth_token (from --auth-token) must be a non-empty token without spaces"),
        ({"max_body_bytes": "10"}, {}, "max_body_bytes (from --max-body-bytes) must be between 1024"),
        ({"analyze_every": "-1h"}, {}, "analyze_every (from --analyze-every) must be a duration"),
        ({"batch_size": "0"}, {}, "batch_size (from --batch-size) must be at least 1"),
        ({}, {"LLMPULSE_GPU_PCIE": "sometimes"}, "gpu_pcie (from $LLMPULSE_GPU_PCIE) must be true or false"),
        ({"dsn": "mysql://x"}, {}, "dsn"),
    ],
)
def test_bad_values_name_the_setting_and_its_source(flags: dict, environ: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_sidecar_config(flags, environ=environ)
    assert message in str(caught.value)


def test_a_bad_dsn_never_shows_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sidecar_config({"dsn": "http://user:hunter2@host:notaport/db"}, environ={})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: 1\nprot: 2\n", "unknown setting(s) prot"),
        ("port: [1\n", "is not valid YAML"),
        ("- port\n", "must hold a mapping of settings, got list"),
        ("scrape:\n  - {address: http://x}\n", "each target is a URL or {url: ..., engine: ..., model: ...}"),
        ("port: abc\n", "port (from "),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        build_sidecar_config({}, environ={}, config_file=str(path))
    assert message in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml' does not exist"):
        build_sidecar_config({}, environ={}, config_file=str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5", 5.0), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("7d", 604800.0), (2.5, 2.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration("x", text) == seconds


def test_the_sidecar_inserts_larger_batches_than_the_sdk_unless_told_otherwise() -> None:
    config = build_sidecar_config({}, environ={})
    assert (config.pipeline.batch_size, config.pipeline.max_queue_size) == (10_000, 50_000)
    small = build_sidecar_config({"max_queue_size": "600"}, environ={})
    assert (small.pipeline.batch_size, small.pipeline.max_queue_size) == (600, 600)
    big = build_sidecar_config({}, environ={"LLMPULSE_BATCH_SIZE": "80000"})
    assert (big.pipeline.batch_size, big.pipeline.max_queue_size) == (80_000, 80_000)


def test_redaction_categories_reach_the_sidecars_pipeline_and_bad_ones_are_named() -> None:
    from llmpulse.agent.export.config import ConfigError
    from llmpulse.agent.sidecar.config import build_sidecar_config

    config = build_sidecar_config({"redact_categories": "credit_card, ip"}, environ={})
    assert config.pipeline.redact_categories == frozenset({"credit_card", "ip"})
    config = build_sidecar_config({}, environ={"LLMPULSE_REDACT_CATEGORIES": "phone"})
    assert config.pipeline.redact_categories == frozenset({"phone"})
    with pytest.raises(ConfigError, match="unknown categories"):
        build_sidecar_config({"redact_categories": "names"}, environ={})


def test_events_wait_is_a_setting_like_the_others(tmp_path: Path) -> None:
    assert build_sidecar_config({}, environ={}).events_wait == 10.0
    assert build_sidecar_config({"events_wait": "2.5s"}, environ={}).events_wait == 2.5
    assert build_sidecar_config({}, environ={"LLMPULSE_EVENTS_WAIT": "0"}).events_wait == 0.0  # never wait
    with pytest.raises(ConfigError, match=r"events_wait \(from \$LLMPULSE_EVENTS_WAIT\) must be a duration"):
        build_sidecar_config({}, environ={"LLMPULSE_EVENTS_WAIT": "soon"})
