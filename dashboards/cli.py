"""``llmpulse dashboards export|push``, ``llmpulse report``, and ``sessions``/``users`` (``sessions_cli``).

Registration imports nothing heavy: grafana-client, PyYAML and the store client load inside handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def _alert_settings(args: argparse.Namespace, datasource_uid: str) -> Any:
    from .alerts import AlertSettings

    if args.alerts:
        return AlertSettings.load(args.alerts, datasource_uid=datasource_uid)
    return AlertSettings(datasource_uid=datasource_uid)


def _datasource(url: str | None, uid: str, name: str) -> Any:
    from .provisioning import DatasourceSettings

    if url is None:
        return None
    return DatasourceSettings.from_url(url, uid=uid, name=name)


def _export(args: argparse.Namespace) -> int:
    from .provisioning import DatasourceSettings, export

    datasource = _datasource(args.clickhouse_url, args.datasource_uid, args.datasource_name) or DatasourceSettings(
        uid=args.datasource_uid, name=args.datasource_name
    )
    settings = _alert_settings(args, datasource.uid)
    files = export(args.out, datasource=datasource, alert_settings=settings, provisioning_dir=args.provisioning_dir)
    for path in files:
        print(path)
    print(f"wrote {len(files)} files; mount {Path(args.out).resolve()} as {args.provisioning_dir} in Grafana")
    return 0


def _push(args: argparse.Namespace) -> int:
    from .push import PushError, push

    url = args.clickhouse_url
    if url is None:
        dsn = os.environ.get("LLMPULSE_DSN", "")
        url = dsn if dsn.startswith(("http://", "https://")) else None
    datasource = _datasource(url, args.datasource_uid, args.datasource_name)
    settings = _alert_settings(args, args.datasource_uid)
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    try:
        report = push(args.url, token, datasource=datasource, alert_settings=settings, timeout=args.timeout)
    except PushError as exc:
        print(f"llmpulse: error: {exc}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .contract import open_store
    from .report import render_report

    client, database, label = open_store(args)
    try:
        html = render_report(client, database, window=args.window, store_label=label)
    finally:
        client.close()
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html)
    except OSError as exc:
        raise ValueError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    print(f"report written to {out.resolve()}")
    return 0


def _add_grafana_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clickhouse-url",
        help="ClickHouse as Grafana reaches it: http(s)://user:password@host:8123/database"
        " (push: default $LLMPULSE_DSN when it is http(s); without it the data source is not pushed)",
    )
    parser.add_argument("--datasource-uid", default="llmpulse-clickhouse", help="data source uid (llmpulse-clickhouse)")
    parser.add_argument("--datasource-name", default="ClickHouse", help="data source name (ClickHouse)")
    parser.add_argument("--alerts", metavar="FILE", help="YAML or JSON file of alert settings (thresholds, windows)")


def register(verbs: Any) -> None:
    dashboards = verbs.add_parser("dashboards", help="Grafana dashboards and alert rules: export files or push")
    actions = dashboards.add_subparsers(dest="dashboards_verb", metavar="ACTION")
    actions.required = True

    export = actions.add_parser("export", help="write Grafana provisioning files (data source, dashboards, alerts)")
    export.add_argument("--out", required=True, help="directory to write (mount it as Grafana's provisioning/)")
    export.add_argument(
        "--provisioning-dir",
        default="/etc/grafana/provisioning",
        help="where Grafana will see --out (default /etc/grafana/provisioning)",
    )
    _add_grafana_args(export)
    export.set_defaults(handler=_export)

    push = actions.add_parser("push", help="provision a running Grafana through its HTTP API (idempotent)")
    push.add_argument("--url", required=True, help="Grafana URL, e.g. http://localhost:3000")
    push.add_argument("--token", help="service-account token (default $GRAFANA_TOKEN)")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds per Grafana call (default 10)")
    _add_grafana_args(push)
    push.set_defaults(handler=_push)

    report = verbs.add_parser("report", help="write the built-in HTML dashboard from the store")
    report.add_argument("--out", default="llmpulse-report.html", help="HTML file to write (llmpulse-report.html)")
    report.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    report.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")
    report.add_argument("--window", default="24h", help="time window up to now, e.g. 1h, 24h, 7d (default 24h)")
    report.set_defaults(handler=_report)

    from . import sessions_cli

    sessions_cli.register(verbs)
