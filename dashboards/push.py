"""Provision a running Grafana through its HTTP API (grafana-client): folder, data source, dashboards, alert rules.

Idempotent: everything has a fixed uid, so a second push finds and updates what the first created
(``PUT`` data source and alert rules by uid, dashboards saved with ``overwrite``), never duplicates.
grafana-client is imported here only (the ``dashboards`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .alerts import AlertSettings, api_rules
from .grafana import render_dashboard
from .panels import DASHBOARDS
from .provisioning import DatasourceSettings


class PushError(Exception):
    """Grafana could not be provisioned; the message says why and what to check."""


@dataclass
class PushReport:
    """What a push did, by kind: "created", "updated" (or "skipped")."""

    grafana_version: str = ""
    folder: str = ""
    datasource: str = ""
    dashboards: dict[str, str] = field(default_factory=dict)
    alert_rules: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"Grafana {self.grafana_version}".rstrip(), f"folder: {self.folder}", f"data source: {self.datasource}"]
        out += [f"dashboard {uid}: {what}" for uid, what in self.dashboards.items()]
        out += [f"alert rule {uid}: {what}" for uid, what in self.alert_rules.items()]
        return out


def check_url(url: str) -> str:
    """The Grafana base URL, normalised for grafana-client (a sub-path keeps its trailing slash)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad Grafana URL {url!r}: use http(s)://host[:port][/sub-path], e.g. http://localhost:3000")
    try:
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(f"bad Grafana URL {url!r}: the port must be a number from 1 to 65535") from None
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path + '/' if path else ''}"


def _explain(exc: Exception, url: str, step: str) -> PushError:
    """One clear message for the ways a Grafana call fails."""
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaServerError, GrafanaTimeoutError

    where = f"{step} at {url}"
    status = getattr(exc, "status_code", None)
    if status == 401:
        return PushError(f"Grafana refused the token (401 Unauthorized) while {where}: check --token")
    if status == 403:
        detail = _message(exc)
        return PushError(
            f"the token may not do this (403 Forbidden) while {where}: use a service-account token with the"
            f" Admin role{': ' + detail if detail else ''}"
        )
    if isinstance(exc, GrafanaTimeoutError):
        return PushError(f"Grafana did not answer in time while {where}: {exc}")
    if isinstance(exc, GrafanaServerError):
        return PushError(f"Grafana failed ({status}) while {where}: {_message(exc)}")
    if isinstance(exc, GrafanaClientError):
        return PushError(f"Grafana rejected the request ({status}) while {where}: {_message(exc)}")
    if isinstance(exc, GrafanaException) or _is_connection_error(exc):
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc)
        return PushError(f"cannot reach Grafana while {where}: {reason}")
    return PushError(f"unexpected error while {where}: {type(exc).__name__}: {exc}")


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("message") or response)
    return str(response or exc)


def _is_connection_error(exc: Exception) -> bool:
    import niquests

    return isinstance(exc, (niquests.exceptions.RequestException, OSError))


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


class _Grafana:
    """The grafana-client calls, each turned into a PushError on failure."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        from grafana_client import GrafanaApi

        self.url = url
        self.api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout)

    def call(self, step: str, function: Any, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if missing_ok and _not_found(exc):
                return None
            raise _explain(exc, self.url, step) from exc


def push(
    url: str,
    token: str | None,
    *,
    datasource: DatasourceSettings | None = None,
    alert_settings: AlertSettings | None = None,
    timeout: float = 10.0,
) -> PushReport:
    """Create or update the folder, data source, dashboards and alert rules; returns what was done."""
    base = check_url(url)
    ds = datasource
    settings = alert_settings or AlertSettings(datasource_uid=ds.uid if ds else AlertSettings().datasource_uid)
    grafana = _Grafana(base, token, timeout)
    api = grafana.api
    report = PushReport()

    # GET /api/health answers without credentials: it tells "reachable" apart from "token refused".
    health = grafana.call("checking /api/health", api.client.GET, "/health")
    report.grafana_version = str((health or {}).get("version", "")) if isinstance(health, dict) else ""

    if grafana.call("reading the folder", api.folder.get_folder, settings.folder_uid, missing_ok=True) is None:
        grafana.call("creating the folder", api.folder.create_folder, settings.folder, uid=settings.folder_uid)
        report.folder = f"{settings.folder_uid}: created"
    else:
        report.folder = f"{settings.folder_uid}: exists"

    if ds is None:
        report.datasource = f"{settings.datasource_uid}: not pushed (no --clickhouse-url)"
    else:
        body = ds.definition(for_file=False)
        found = grafana.call("reading the data source", api.datasource.get_datasource_by_uid, ds.uid, missing_ok=True)
        if found is None:
            grafana.call("creating the data source", api.datasource.create_datasource, body)
            report.datasource = f"{ds.uid}: created"
        else:
            body["id"] = found.get("id") if isinstance(found, dict) else None
            grafana.call("updating the data source", api.datasource.update_datasource_by_uid, ds.uid, body)
            report.datasource = f"{ds.uid}: updated"

    for dashboard in DASHBOARDS:
        payload = {
            "dashboard": {**render_dashboard(dashboard, datasource_uid=settings.datasource_uid), "id": None},
            "folderUid": settings.folder_uid,
            "overwrite": True,
            "message": "llmpulse dashboards push",
        }
        saved = grafana.call(f"saving dashboard {dashboard.uid}", api.dashboard.update_dashboard, payload)
        version = saved.get("version") if isinstance(saved, dict) else None
        report.dashboards[dashboard.uid] = "created" if version == 1 else f"updated (version {version})"

    provisioning = api.alertingprovisioning
    for rule in api_rules(settings):
        uid = rule["uid"]
        found = grafana.call(f"reading alert rule {uid}", provisioning.get_alertrule, uid, missing_ok=True)
        if found is None:
            grafana.call(f"creating alert rule {uid}", provisioning.create_alertrule, rule, disable_provenance=True)
            report.alert_rules[uid] = "created"
        else:
            grafana.call(
                f"updating alert rule {uid}", provisioning.update_alertrule, uid, rule, disable_provenance=True
            )
            report.alert_rules[uid] = "updated"
    return report
