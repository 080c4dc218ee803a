"""``llmpulse agent``: run the sidecar (OTLP receiver, GPU collector, serving-engine scraper)."""

from __future__ import annotations

import argparse
from typing import Any

from llmpulse.agent.sidecar.config import SETTINGS

_FLAG_TYPES = {"scrape": "append", "metrics_without_auth": "switch"}


def register(verbs: Any) -> None:
    """Add the ``agent`` verb: one flag per setting, each also settable by environment or YAML file."""
    parser = verbs.add_parser(
        "agent",
        help="run the sidecar: OTLP/HTTP receiver, GPU collector, serving-engine scraper",
        description="Run the llmpulse sidecar. Every setting is a flag, an environment variable or a key of the "
        "YAML file given with --config (in that order of precedence).",
    )
    parser.add_argument("--config", help="YAML file of settings (default: $LLMPULSE_AGENT_CONFIG)")
    for name, (env, text) in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        where = f" [${env}]" if env else ""
        if _FLAG_TYPES.get(name) == "append":
            parser.add_argument(flag, dest=name, action="append", help=f"{text}; repeatable{where}")
        elif _FLAG_TYPES.get(name) == "switch":  # a bare flag turns it on; "--flag false" also works
            parser.add_argument(flag, dest=name, nargs="?", const="true", metavar="BOOL", help=text + where)
        else:
            parser.add_argument(flag, dest=name, help=text + where)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import os

    # The sidecar is its own process: every file it writes (the embedded store's parts, spool, log)
    # holds prompts and answers, so none is readable by other users of the host.
    os.umask(0o077)

    from llmpulse.agent.sidecar.config import build_sidecar_config
    from llmpulse.agent.sidecar.server import Sidecar
    from llmpulse.agent.store.client import StoreUnavailable
    from llmpulse.agent.store.dsn import open_error_message

    from llmpulse import __version__

    flags = {name: getattr(args, name) for name in SETTINGS}
    config = build_sidecar_config(flags, config_file=args.config)
    sidecar = Sidecar(config, version=__version__)
    try:
        sidecar.open_store()
    except Exception as exc:
        sidecar.pipeline.shutdown(0.1)
        assert config.pipeline.store is not None
        raise StoreUnavailable(open_error_message(config.pipeline.store, exc)) from exc
    finished = asyncio.run(sidecar.run())
    return 0 if finished else 1
