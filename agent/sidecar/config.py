"""Settings of ``llmpulse agent``: flags over environment over a YAML file over defaults, all validated.

Each setting has one name, used as the YAML key, and the flag ``--name-with-dashes`` and the
environment variable in ``SETTINGS``. A wrong value is reported with the setting's name and where it
came from, before the sidecar opens the store or a port.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmpulse.agent.export.config import Config, ConfigError, build_config
from llmpulse.agent.store import duration

ENV_CONFIG_FILE = "LLMPULSE_AGENT_CONFIG"
GPU_MODES = ("auto", "on", "off")
ENGINES = ("auto", "vllm", "tgi")
WAL_FSYNC = ("always", "batch", "off")

# name -> (environment variable, help). The pipeline settings are passed on to build_config.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "dsn": ("LLMPULSE_DSN", "store DSN (default: the embedded store in ./.llmpulse/store)"),
    "database": ("LLMPULSE_DATABASE", "database name (default: from the DSN, else 'llmpulse')"),
    "host": ("LLMPULSE_AGENT_HOST", "address to listen on (default 0.0.0.0)"),
    "port": ("LLMPULSE_AGENT_PORT", "OTLP/HTTP and /metrics port (default 4318)"),
    "auth_token": (
        "LLMPULSE_AGENT_TOKEN",
        "require 'Authorization: Bearer TOKEN' on every endpoint but /healthz (default: none); a flag is "
        "visible in ps, prefer the variable or auth_token_file",
    ),
    "auth_token_file": ("LLMPULSE_AGENT_TOKEN_FILE", "read auth_token from this file (default: none)"),
    "metrics_without_auth": (
        "LLMPULSE_AGENT_METRICS_WITHOUT_AUTH",
        "serve /metrics without the token, for a scraper that has none (default false)",
    ),
    "max_body_bytes": ("LLMPULSE_AGENT_MAX_BODY_BYTES", "largest OTLP body, after decompression (default 64 MiB)"),
    "max_inflight_bytes": (
        "LLMPULSE_AGENT_MAX_INFLIGHT_BYTES",
        "request body bytes held at once across all requests; past it 503 (default 128 MiB)",
    ),
    "max_connections": ("LLMPULSE_AGENT_MAX_CONNECTIONS", "open connections; past it 503 and closed (default 256)"),
    "idle_timeout": (
        "LLMPULSE_AGENT_IDLE_TIMEOUT",
        "close a connection that sends no complete request headers for this long (default 15s)",
    ),
    "events_wait": (
        "LLMPULSE_EVENTS_WAIT",
        "how long an LLM span without content waits for its GenAI events (OTLP logs); 0 = never (default 10s)",
    ),
    "gpu": ("LLMPULSE_GPU", "GPU collection: auto (if a driver is found), on (required), off (default auto)"),
    "gpu_interval": ("LLMPULSE_GPU_INTERVAL", "seconds between GPU samples (default 5)"),
    "gpu_pcie": ("LLMPULSE_GPU_PCIE", "read PCIe throughput (NVML samples 20 ms per call) (default true)"),
    "scrape": ("LLMPULSE_SCRAPE", "serving-engine /metrics URLs, comma-separated (default: none)"),
    "scrape_engine": ("LLMPULSE_SCRAPE_ENGINE", "engine of the scrape targets: auto, vllm or tgi (default auto)"),
    "scrape_interval": ("LLMPULSE_SCRAPE_INTERVAL", "seconds between scrapes (default 15)"),
    "scrape_model": ("LLMPULSE_SCRAPE_MODEL", "model name for engines whose page names none, e.g. TGI (default none)"),
    "analyze_every": ("LLMPULSE_ANALYZE_EVERY", "run all analyzers this often, e.g. 1h; 0 = never (default 0)"),
    "analyze_window": ("LLMPULSE_ANALYZE_WINDOW", "current window of scheduled analyses (default 1h)"),
    "analyze_reference": ("LLMPULSE_ANALYZE_REFERENCE", "reference window of scheduled analyses (default 7d)"),
    "spool_dir": ("LLMPULSE_SPOOL_DIR", "where batches wait while the store is down (default ./.llmpulse/spool)"),
    "spool_max_bytes": ("LLMPULSE_SPOOL_MAX_BYTES", "spool size cap in bytes (default 512 MiB)"),
    "max_queue_size": ("LLMPULSE_MAX_QUEUE_SIZE", "rows held in memory before 503 (default 50000)"),
    "redact_otlp": ("LLMPULSE_REDACT_OTLP", "redact secrets and e-mails in received OTLP content (default true)"),
    "redact_categories": (
        "LLMPULSE_REDACT_CATEGORIES",
        "opt-in redaction categories, comma-separated: credit_card, iban, phone, ip (default none)",
    ),
    "durable": ("LLMPULSE_DURABLE", "answer 200 only once a request is in the write-ahead log (default true)"),
    "wal_dir": ("LLMPULSE_WAL_DIR", "write-ahead log directory (default: 'wal' next to spool_dir)"),
    "wal_fsync": ("LLMPULSE_WAL_FSYNC", "fsync of the write-ahead log: always, batch or off (default batch)"),
    "wal_max_bytes": ("LLMPULSE_WAL_MAX_BYTES", "write-ahead log size cap in bytes; past it 503 (default 512 MiB)"),
    "batch_size": ("LLMPULSE_BATCH_SIZE", "rows per insert (default 10000)"),
    "flush_interval": ("LLMPULSE_FLUSH_INTERVAL", "seconds between inserts of a partial batch (default 1)"),
    "shutdown_timeout": ("LLMPULSE_AGENT_SHUTDOWN_TIMEOUT", "seconds to flush on SIGTERM before exiting (default 10)"),
}
# A sidecar gathers many clients' spans: larger inserts than the in-app SDK's (ClickHouse inserts
# fewer, larger blocks much faster; bench/receiver.py measures it).
SIDECAR_BATCH_SIZE = 10_000
SIDECAR_MAX_QUEUE_SIZE = 50_000
_PIPELINE = (
    "dsn",
    "database",
    "spool_dir",
    "spool_max_bytes",
    "max_queue_size",
    "batch_size",
    "flush_interval",
    "redact_categories",
)


@dataclass(frozen=True)
class ScrapeTarget:
    url: str
    engine: str = "auto"
    model: str | None = None  # for engines whose metrics name no model (TGI)


@dataclass(frozen=True)
class SidecarConfig:
    pipeline: Config
    host: str = "0.0.0.0"
    port: int = 4318
    auth_token: str | None = None  # from auth_token or the file auth_token_file names; never logged
    metrics_without_auth: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    max_inflight_bytes: int = 128 * 1024 * 1024
    max_connections: int = 256
    idle_timeout: float = 15.0
    gpu: str = "auto"
    gpu_interval: float = 5.0
    gpu_pcie: bool = True
    scrape: tuple[ScrapeTarget, ...] = ()
    scrape_interval: float = 15.0
    analyze_every: float = 0.0
    analyze_window: str = "1h"
    analyze_reference: str = "7d"
    shutdown_timeout: float = 10.0
    redact_otlp: bool = True
    # How long an LLM span that came without content waits for its GenAI events (OTLP logs) before its
    # llm_calls row is written; 0 = never. Not a flag yet: a setting must be in the README's table.
    events_wait: float = 10.0
    durable: bool = True
    wal_dir: str = ""  # filled in by build_sidecar_config: <spool_dir>/../wal unless set
    wal_fsync: str = "batch"
    wal_max_bytes: int = 512 * 1024 * 1024
    sources: dict[str, str] = field(default_factory=dict)  # setting -> "flag" | "$ENV" | "FILE" (for messages)


def _as_int(value: Any) -> int:
    """A best-effort number for choosing defaults; the real validation happens in build_config."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _where(name: str, source: str) -> str:
    return f"{name} (from {source})" if source != "default" else name


def parse_duration(name: str, value: Any, source: str = "default", *, allow_zero: bool = False) -> float:
    """Seconds from a number or text like ``500ms``, ``5s``, ``2m``, ``1h``, ``7d``, ``1w`` (``store.duration``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{_where(name, source)} must be a duration such as 5s, 2m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = duration.seconds(str(value))
        except ValueError:
            raise ConfigError(
                f"{_where(name, source)} must be a duration such as 5s, 2m or 1h, got {value!r}"
            ) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        low = "0 (off) or more" if allow_zero else "more than 0"
        raise ConfigError(f"{_where(name, source)} must be {low}, got {value!r}")
    return seconds


def _int(name: str, value: Any, source: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{_where(name, source)} must be a whole number, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigError(f"{_where(name, source)} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{_where(name, source)} must be between {low} and {high}, got {value!r}")
    return number


def _flag(name: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{_where(name, source)} must be true or false, got {value!r}")


def _choice(name: str, value: Any, source: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ConfigError(f"{_where(name, source)} must be one of {', '.join(choices)}, got {value!r}")
    return text


def _targets(value: Any, source: str, engine: str, model: str | None) -> tuple[ScrapeTarget, ...]:
    items: list[Any] = (
        value.split(",") if isinstance(value, str) else list(value) if isinstance(value, list) else [value]
    )
    targets = []
    for item in items:
        if isinstance(item, Mapping):
            unknown = set(item) - {"url", "engine", "model"}
            if unknown or "url" not in item:
                raise ConfigError(
                    f"{_where('scrape', source)}: each target is a URL or {{url: ..., engine: ..., model: ...}}, "
                    f"got {dict(item)!r}"
                )
            url = str(item["url"]).strip()
            target_engine = _choice("scrape engine", item.get("engine", engine), source, ENGINES)
            target_model = str(item["model"]).strip() if item.get("model") else model
        else:
            url, target_engine, target_model = str(item).strip(), engine, model
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"{_where('scrape', source)} must list http(s) URLs such as http://localhost:8000/metrics, got {url!r}"
            )
        targets.append(ScrapeTarget(url, target_engine, target_model))
    return tuple(targets)


def _wal_settings(values: Mapping[str, Any], src: Any, spool_dir: str) -> dict[str, Any]:
    """The write-ahead log's settings; its directory defaults to ``wal`` beside the spool directory."""
    settings: dict[str, Any] = {}
    if "durable" in values:
        settings["durable"] = _flag("durable", values["durable"], src("durable"))
    wal_dir = str(values.get("wal_dir", "")).strip()
    settings["wal_dir"] = os.path.abspath(wal_dir or os.path.join(os.path.dirname(spool_dir), "wal"))
    if os.path.exists(settings["wal_dir"]) and not os.path.isdir(settings["wal_dir"]):
        raise ConfigError(f"{_where('wal_dir', src('wal_dir'))} {settings['wal_dir']!r} exists and is not a directory")
    if "wal_fsync" in values:
        fsync = "off" if values["wal_fsync"] is False else values["wal_fsync"]  # YAML reads a bare off as false
        settings["wal_fsync"] = _choice("wal_fsync", fsync, src("wal_fsync"), WAL_FSYNC)
    if "wal_max_bytes" in values:
        settings["wal_max_bytes"] = _int("wal_max_bytes", values["wal_max_bytes"], src("wal_max_bytes"), 1 << 20, 2**40)
    return settings


def _auth_settings(values: Mapping[str, Any], src: Any) -> dict[str, Any]:
    """The token, given directly or in a file (one of the two), and whether /metrics is open without it.

    Messages name the setting and the file, never the token.
    """
    settings: dict[str, Any] = {}
    if "auth_token" in values and "auth_token_file" in values:
        raise ConfigError(
            f"give one of {_where('auth_token', src('auth_token'))} and "
            f"{_where('auth_token_file', src('auth_token_file'))}, not both"
        )
    name = "auth_token_file" if "auth_token_file" in values else "auth_token"
    if name in values:
        token = str(values[name])
        if name == "auth_token_file":
            path = os.path.expanduser(token.strip())
            try:
                with open(path, encoding="utf-8") as handle:
                    token = handle.read(65_537)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
                raise ConfigError(f"{_where(name, src(name))}: token file {path!r} cannot be read: {reason}") from None
        token = token.strip()
        if not token or len(token) > 65_536 or any(c.isspace() or not c.isprintable() for c in token):
            what = f"the token in {_where(name, src(name))}" if name == "auth_token_file" else _where(name, src(name))
            raise ConfigError(f"{what} must be a non-empty token without spaces (printable, at most 64 KiB)")
        settings["auth_token"] = token
    if "metrics_without_auth" in values:
        settings["metrics_without_auth"] = _flag(
            "metrics_without_auth", values["metrics_without_auth"], src("metrics_without_auth")
        )
    return settings


def _limit_settings(values: Mapping[str, Any], src: Any, max_body_bytes: int) -> dict[str, Any]:
    """Connection and in-flight byte caps and the idle timeout; the byte cap must hold one largest body."""
    settings: dict[str, Any] = {}
    if "max_inflight_bytes" in values:
        settings["max_inflight_bytes"] = _int(
            "max_inflight_bytes", values["max_inflight_bytes"], src("max_inflight_bytes"), 1024, 2**40
        )
    inflight = settings.get("max_inflight_bytes", SidecarConfig.max_inflight_bytes)
    if inflight < max_body_bytes:
        raise ConfigError(
            f"{_where('max_inflight_bytes', src('max_inflight_bytes'))} ({inflight}) must be at least "
            f"max_body_bytes ({max_body_bytes}), or a largest body could never be taken"
        )
    if "max_connections" in values:
        settings["max_connections"] = _int(
            "max_connections", values["max_connections"], src("max_connections"), 1, 1_000_000
        )
    if "idle_timeout" in values:
        settings["idle_timeout"] = parse_duration("idle_timeout", values["idle_timeout"], src("idle_timeout"))
    if "events_wait" in values:
        settings["events_wait"] = parse_duration(
            "events_wait", values["events_wait"], src("events_wait"), allow_zero=True
        )
    return settings


def load_file(path: str) -> dict[str, Any]:
    """The YAML file's settings; unknown keys and bad YAML are errors naming the file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path!r} is not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of settings, got {type(document).__name__}")
    unknown = sorted(str(key) for key in document if str(key).replace("-", "_") not in SETTINGS)
    if unknown:
        raise ConfigError(
            f"config file {path!r}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(SETTINGS))}"
        )
    return {str(key).replace("-", "_"): value for key, value in document.items()}


def build_sidecar_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> SidecarConfig:
    """Merge and validate. ``flags`` holds only the flags given on the command line (others are None)."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
    path = config_file or environ.get(ENV_CONFIG_FILE, "").strip() or None
    from_file = load_file(path) if path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (env, _help) in SETTINGS.items():
        if name in flags:
            values[name], sources[name] = flags[name], "--" + name.replace("_", "-")
        elif env and environ.get(env, "").strip():
            values[name], sources[name] = environ[env].strip(), "$" + env
        elif name in from_file and from_file[name] is not None:
            values[name], sources[name] = from_file[name], str(path)
    src = lambda name: sources.get(name, "default")  # noqa: E731

    pipeline_args = {name: values[name] for name in _PIPELINE if name in values}
    pipeline_args.setdefault("max_queue_size", max(SIDECAR_MAX_QUEUE_SIZE, _as_int(pipeline_args.get("batch_size"))))
    pipeline_args.setdefault("batch_size", min(SIDECAR_BATCH_SIZE, _as_int(pipeline_args["max_queue_size"])))
    try:
        # The sidecar only ever writes to the store: an OTEL_EXPORTER_OTLP_ENDPOINT in its environment
        # (common in pods) must not make it forward spans to itself.
        pipeline = build_config({}, export="clickhouse", service_name="llmpulse-agent", **pipeline_args)
    except ConfigError as exc:
        text = str(exc)
        for name in pipeline_args:
            if text.startswith(name) and src(name) != "default":
                text = text.replace(name, _where(name, src(name)), 1)
                break
        raise ConfigError(text) from None

    engine = _choice("scrape_engine", values.get("scrape_engine", "auto"), src("scrape_engine"), ENGINES)
    settings: dict[str, Any] = {"pipeline": pipeline, "sources": sources}
    if "host" in values:
        host = str(values["host"]).strip()
        if not host or any(c.isspace() for c in host):
            raise ConfigError(f"{_where('host', src('host'))} must be a host name or address, got {values['host']!r}")
        settings["host"] = host
    if "port" in values:
        settings["port"] = _int("port", values["port"], src("port"), 0, 65535)
    settings.update(_auth_settings(values, src))
    if "max_body_bytes" in values:
        settings["max_body_bytes"] = _int(
            "max_body_bytes", values["max_body_bytes"], src("max_body_bytes"), 1024, 2**31
        )
    settings.update(_limit_settings(values, src, settings.get("max_body_bytes", SidecarConfig.max_body_bytes)))
    if "gpu" in values:
        gpu = values["gpu"]
        gpu = {True: "on", False: "off"}.get(gpu, gpu) if isinstance(gpu, bool) else gpu
        settings["gpu"] = _choice("gpu", gpu, src("gpu"), GPU_MODES)
    for name in ("gpu_interval", "scrape_interval", "shutdown_timeout"):
        if name in values:
            settings[name] = parse_duration(name, values[name], src(name))
    if "analyze_every" in values:
        settings["analyze_every"] = parse_duration(
            "analyze_every", values["analyze_every"], src("analyze_every"), allow_zero=True
        )
    for name in ("analyze_window", "analyze_reference"):
        if name in values:
            parse_duration(name, values[name], src(name))
            settings[name] = duration.canonical(str(values[name]).strip())  # the form the analyzers read
    if "gpu_pcie" in values:
        settings["gpu_pcie"] = _flag("gpu_pcie", values["gpu_pcie"], src("gpu_pcie"))
    if "redact_otlp" in values:
        settings["redact_otlp"] = _flag("redact_otlp", values["redact_otlp"], src("redact_otlp"))
    settings.update(_wal_settings(values, src, pipeline.spool_dir))
    model = str(values["scrape_model"]).strip() or None if "scrape_model" in values else None
    if "scrape" in values:
        settings["scrape"] = _targets(values["scrape"], src("scrape"), engine, model)
    return SidecarConfig(**settings)
