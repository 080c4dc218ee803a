"""The settings of one pipeline: ``configure()`` arguments over environment variables over defaults.

Every value is validated here, so a wrong setting raises :class:`ConfigError` at ``configure`` time
with a message naming the setting (and the environment variable it came from), never later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmpulse.agent.store.client import ENV_DSN
from llmpulse.agent.store.dsn import DSNError, StoreTarget, parse_dsn

# Environment variables (documented in README.md "Configuration").
ENV_DATABASE = "LLMPULSE_DATABASE"
ENV_CAPTURE_CONTENT = "LLMPULSE_CAPTURE_CONTENT"
ENV_SAMPLE_RATE = "LLMPULSE_SAMPLE_RATE"
ENV_REDACT_CATEGORIES = "LLMPULSE_REDACT_CATEGORIES"
ENV_SPOOL_DIR = "LLMPULSE_SPOOL_DIR"
ENV_SPOOL_MAX_BYTES = "LLMPULSE_SPOOL_MAX_BYTES"
ENV_EXPORT = "LLMPULSE_EXPORT"
ENV_PRICES_FILE = "LLMPULSE_PRICES_FILE"
ENV_MAX_QUEUE_SIZE = "LLMPULSE_MAX_QUEUE_SIZE"
ENV_BATCH_SIZE = "LLMPULSE_BATCH_SIZE"
ENV_FLUSH_INTERVAL = "LLMPULSE_FLUSH_INTERVAL"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"

EXPORT_TARGETS = ("clickhouse", "otlp")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


@dataclass(frozen=True)
class Config:
    """The validated settings of one ``configure()`` call."""

    store: StoreTarget | None
    service_name: str = "unknown_service"
    capture_content: bool = True
    redact_hooks: tuple[Callable[[str], str], ...] = ()
    redact_categories: frozenset[str] = frozenset()  # opt-in: credit_card, iban, phone, ip
    sample_rate: float = 1.0
    spool_dir: str = ""
    spool_max_bytes: int = 512 * 1024 * 1024
    otlp_endpoint: str | None = None
    export: tuple[str, ...] = ("clickhouse",)
    prices: Mapping[str, Mapping[str, float]] | str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    max_queue_size: int = 20_000
    batch_size: int = 2_000
    flush_interval: float = 1.0
    shutdown_timeout: float = 5.0
    apply_schema: bool = True


def _source(name: str, env: str | None) -> str:
    return f"{name} (from ${env})" if env else name


def _pick(value: Any, env: str | None, environ: Mapping[str, str]) -> tuple[Any, str | None]:
    """Explicit argument wins; otherwise the environment variable, if set and not blank."""
    if value is not None:
        return value, None
    if env and environ.get(env, "").strip():
        return environ[env].strip(), env
    return None, None


def _bool(name: str, value: Any, env: str | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{_source(name, env)} must be true or false (1/0, yes/no, on/off), got {value!r}")


def _number(name: str, value: Any, env: str | None, kind: type, low: float, high: float | None = None) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{_source(name, env)} must be a number, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_source(name, env)} must be a {kind.__name__} number, got {value!r}") from None
    if kind is float and number != number:  # NaN
        raise ConfigError(f"{_source(name, env)} must be a number, got {value!r}")
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{_source(name, env)} must be {bound}, got {value!r}")
    return number


def _endpoint(value: Any, env: str | None) -> str:
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{_source('otlp_endpoint', env)} must be an http(s) URL such as http://localhost:4318, got {value!r}"
        )
    return text


def _export(value: Any, env: str | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    targets = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    unknown = [t for t in targets if t not in EXPORT_TARGETS]
    if unknown or not targets:
        raise ConfigError(
            f"{_source('export', env)} must list one or more of {', '.join(EXPORT_TARGETS)}, got {value!r}"
        )
    return targets


def _resource(value: Any, env: str | None) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    attributes: dict[str, str] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{_source('resource_attributes', env)} must be key=value pairs, got {item!r}")
        attributes[key.strip()] = val.strip()
    return attributes


def _hooks(redact: Any) -> tuple[Callable[[str], str], ...]:
    if redact is None:
        return ()
    hooks = (redact,) if callable(redact) else tuple(redact) if isinstance(redact, Sequence) else None
    if hooks is None or not all(callable(h) for h in hooks):
        raise ConfigError(f"redact must be a callable str -> str or a list of them, got {redact!r}")
    return hooks


def _categories(value: Any, env: str | None) -> frozenset[str]:
    from llmpulse.agent.enrich.redaction import CATEGORIES

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ConfigError(f"{_source('redact_categories', env)} must be a list of categories, got {value!r}")
    chosen = frozenset(str(item).strip() for item in items if str(item).strip())
    unknown = chosen - CATEGORIES
    if unknown:
        raise ConfigError(
            f"{_source('redact_categories', env)}: unknown categories {sorted(unknown)}; known: {sorted(CATEGORIES)}"
        )
    return chosen


def _prices(value: Any, env: str | None) -> Mapping[str, Mapping[str, float]] | str | None:
    if value is None:
        return None
    from llmpulse.agent.enrich.prices import PriceTable

    try:
        PriceTable.vendored().with_overrides(value)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{_source('prices', env)}: {exc}") from None
    return value


def build_config(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Config:
    """Merge arguments, environment and defaults into a validated :class:`Config`."""
    environ = os.environ if environ is None else environ
    dsn, dsn_env = _pick(kwargs.pop("dsn", None), ENV_DSN, environ)
    database, db_env = _pick(kwargs.pop("database", None), ENV_DATABASE, environ)
    export_value, export_env = _pick(kwargs.pop("export", None), ENV_EXPORT, environ)
    endpoint_value, endpoint_env = _pick(kwargs.pop("otlp_endpoint", None), ENV_OTLP_ENDPOINT, environ)
    otlp_endpoint = _endpoint(endpoint_value, endpoint_env) if endpoint_value else None
    if export_value is not None:
        export = _export(export_value, export_env)
    else:
        export = ("clickhouse", "otlp") if otlp_endpoint else ("clickhouse",)
    if "otlp" in export and not otlp_endpoint:
        raise ConfigError(
            f"{_source('export', export_env)} includes otlp but no endpoint is set: "
            f"pass otlp_endpoint= or set ${ENV_OTLP_ENDPOINT}"
        )
    store = None
    if "clickhouse" in export:
        try:
            store = parse_dsn(dsn, database=database)
        except DSNError as exc:
            where = "dsn (from $LLMPULSE_DSN)" if dsn_env else "dsn"
            if db_env:
                where += " / database (from $LLMPULSE_DATABASE)"
            raise ConfigError(f"{where}: {exc}") from None

    values: dict[str, Any] = {"store": store, "export": export, "otlp_endpoint": otlp_endpoint}
    service, _ = _pick(kwargs.pop("service_name", None), ENV_SERVICE_NAME, environ)
    if service is not None:
        if not str(service).strip():
            raise ConfigError("service_name must not be empty")
        values["service_name"] = str(service).strip()
    capture, env = _pick(kwargs.pop("capture_content", None), ENV_CAPTURE_CONTENT, environ)
    if capture is not None:
        values["capture_content"] = _bool("capture_content", capture, env)
    values["redact_hooks"] = _hooks(kwargs.pop("redact", None))
    categories, env = _pick(kwargs.pop("redact_categories", None), ENV_REDACT_CATEGORIES, environ)
    if categories is not None:
        values["redact_categories"] = _categories(categories, env)
    rate, env = _pick(kwargs.pop("sample_rate", None), ENV_SAMPLE_RATE, environ)
    if rate is not None:
        values["sample_rate"] = _number("sample_rate", rate, env, float, 0.0, 1.0)
    spool, _ = _pick(kwargs.pop("spool_dir", None), ENV_SPOOL_DIR, environ)
    values["spool_dir"] = os.path.abspath(str(spool)) if spool else os.path.abspath(os.path.join(".llmpulse", "spool"))
    if os.path.exists(values["spool_dir"]) and not os.path.isdir(values["spool_dir"]):
        raise ConfigError(f"spool_dir {values['spool_dir']!r} exists and is not a directory")
    for name, env_name, kind, low in (
        ("spool_max_bytes", ENV_SPOOL_MAX_BYTES, int, 1024 * 1024),
        ("max_queue_size", ENV_MAX_QUEUE_SIZE, int, 1),
        ("batch_size", ENV_BATCH_SIZE, int, 1),
        ("flush_interval", ENV_FLUSH_INTERVAL, float, 0.01),
        ("shutdown_timeout", None, float, 0.0),
    ):
        raw, env = _pick(kwargs.pop(name, None), env_name, environ)
        if raw is not None:
            values[name] = _number(name, raw, env, kind, low)
    prices, env = _pick(kwargs.pop("prices", None), ENV_PRICES_FILE, environ)
    values["prices"] = _prices(prices, env)
    resource, env = _pick(kwargs.pop("resource_attributes", None), ENV_RESOURCE_ATTRIBUTES, environ)
    if resource is not None:
        values["resource_attributes"] = _resource(resource, env)
    apply_schema = kwargs.pop("apply_schema", None)
    if apply_schema is not None:
        values["apply_schema"] = _bool("apply_schema", apply_schema, None)
    if kwargs:
        raise ConfigError(f"unknown configure() argument(s): {', '.join(sorted(kwargs))}")
    config = Config(**values)
    if config.batch_size > config.max_queue_size:
        raise ConfigError(
            f"batch_size ({config.batch_size}) must not be larger than max_queue_size ({config.max_queue_size})"
        )
    return config
