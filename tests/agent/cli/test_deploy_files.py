"""The Dockerfile, docker-compose.yml and Kubernetes manifest cannot run here (no Docker, no cluster):
these tests keep them consistent with the code's flags, settings, ports and endpoints."""

from __future__ import annotations

import re

import pytest
import yaml
from llmpulse.agent.cli import build_parser
from llmpulse.agent.export import config as sdk_config
from llmpulse.agent.sidecar.config import ENV_CONFIG_FILE, SETTINGS, SidecarConfig, build_sidecar_config

from tests.conftest import REPO

DEFAULT_PORT = SidecarConfig.__dataclass_fields__["port"].default
KNOWN_ENV = (
    {env for env, _ in SETTINGS.values() if env}
    | {value for name, value in vars(sdk_config).items() if name.startswith("ENV_")}
    | {ENV_CONFIG_FILE, "PYTHONUNBUFFERED"}
)
# Not ours but meaningful to the libraries or runtimes they are set for.
FOREIGN_ENV = {"NVIDIA_VISIBLE_DEVICES", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"}


def _agent_args_are_valid(args: list[str], environ: dict[str, str] | None = None) -> None:
    parsed = build_parser().parse_args(["agent", *args])
    flags = {name: getattr(parsed, name) for name in SETTINGS}
    build_sidecar_config(flags, environ=environ or {})


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert f"EXPOSE {DEFAULT_PORT}" in text
    assert 'ENTRYPOINT ["llmpulse", "agent"]' in text
    assert re.search(r"^USER 10001$", text, re.M), "the image runs as a non-root user"
    env_block = re.search(r"^ENV (.*?)(?:\n\S)", text, re.M | re.S).group(1)
    env = dict(re.findall(r"([A-Z_]+)=(\S+)", env_block))
    assert set(env) <= KNOWN_ENV
    assert env["LLMPULSE_AGENT_PORT"] == str(DEFAULT_PORT)
    build_sidecar_config({}, environ=env)
    assert f"http://127.0.0.1:{DEFAULT_PORT}/healthz" in text
    for folder in ("agent", "collectors", "analyzers", "dashboards", "llmpulse"):
        assert f"COPY {folder} {folder}" in text
    extras = re.search(r"ARG EXTRAS=(\S+)", text).group(1).split(",")
    pyproject = (REPO / "pyproject.toml").read_text()
    for extra in extras:
        assert re.search(rf"^{extra} = ", pyproject, re.M), f"extra {extra} is not in pyproject.toml"


def test_docker_compose() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    agent = services["llmpulse-agent"]
    _agent_args_are_valid(agent["command"], agent["environment"])
    assert f"{DEFAULT_PORT}:{DEFAULT_PORT}" in agent["ports"]
    assert set(agent["environment"]) <= KNOWN_ENV
    assert agent["environment"]["LLMPULSE_DSN"].startswith("http://llmpulse:llmpulse@clickhouse:8123/")

    app = services["example-app"]
    assert app["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://llmpulse-agent:{DEFAULT_PORT}"
    config = sdk_config.build_config(app["environment"])
    assert config.export == ("otlp",) and config.store is None
    script = app["volumes"][0].split(":")[0]
    assert (REPO / script).is_file()
    compile((REPO / script).read_text(), script, "exec")

    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    provisioning = REPO / services["grafana"]["volumes"][0].split(":")[0]
    datasource = yaml.safe_load((provisioning / "datasources" / "clickhouse.yaml").read_text())["datasources"][0]
    assert datasource["type"] == "grafana-clickhouse-datasource"
    ch = services["clickhouse"]["environment"]
    assert (datasource["jsonData"]["username"], datasource["secureJsonData"]["password"]) == (
        ch["CLICKHOUSE_USER"],
        ch["CLICKHOUSE_PASSWORD"],
    )


def test_kubernetes_pod() -> None:
    pod = yaml.safe_load((REPO / "deploy" / "kubernetes" / "vllm-with-llmpulse.yaml").read_text())
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    sidecar = containers["llmpulse"]
    _agent_args_are_valid(sidecar["args"])
    assert sidecar["ports"] == [{"containerPort": DEFAULT_PORT, "name": "otlp-http"}]
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": DEFAULT_PORT}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": DEFAULT_PORT}
    assert sidecar["securityContext"]["runAsUser"] == 10001
    names = {e["name"] for e in sidecar["env"]}
    assert names <= KNOWN_ENV | FOREIGN_ENV
    plain = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
    build_sidecar_config({}, environ={k: v for k, v in plain.items() if k in KNOWN_ENV})

    vllm = containers["vllm"]
    vllm_port = vllm["ports"][0]["containerPort"]
    scrape = sidecar["args"][sidecar["args"].index("--scrape") + 1]
    assert scrape == f"http://localhost:{vllm_port}/metrics"
    assert f"--otlp-traces-endpoint=http://localhost:{DEFAULT_PORT}/v1/traces" in vllm["args"]


@pytest.mark.parametrize("path", ["Dockerfile", "docker-compose.yml", "deploy/kubernetes/vllm-with-llmpulse.yaml"])
def test_deploy_files_say_they_are_not_run_in_ci(path: str) -> None:
    assert "Not " in (REPO / path).read_text().split("\n\n")[0] or "not " in (REPO / path).read_text()[:400]


def test_readme_mentions_deploy_files() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("Dockerfile", "docker-compose.yml", "deploy/kubernetes/vllm-with-llmpulse.yaml"):
        assert name in readme


def test_readme_lists_every_agent_setting() -> None:
    readme = (REPO / "README.md").read_text()
    for name, (env, _) in SETTINGS.items():
        assert f"| `{name}`" in readme and f"`--{name.replace('_', '-')}`" in readme and f"`{env}`" in readme
