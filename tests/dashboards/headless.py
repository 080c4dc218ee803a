"""Load a page in a real headless Chromium through the DevTools protocol: console errors, DOM facts, screenshot.

Needs a ``chromium`` (or ``chromium-browser`` / ``google-chrome``) binary; tests skip without one.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Guards against a browser that never answers (a hang would otherwise block the suite); not a speed check.
HANG_GUARD_SECONDS = 120


def find_chromium() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


@dataclass
class PageRun:
    console_errors: list[str] = field(default_factory=list)
    facts: Any = None
    screenshot: bytes = b""


async def _read_devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("chromium exited before printing its DevTools address")
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)


async def _page_socket_url(browser_ws: str) -> str:
    import aiohttp

    port = re.search(r":(\d+)/", browser_ws).group(1)
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/json/list") as response:
        targets = await response.json()
    return next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")


async def _run(chromium: str, url: str, script: str, profile: Path, width: int) -> PageRun:
    import aiohttp

    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},1000",
        "about:blank",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run = PageRun()
    try:
        page_ws = await _page_socket_url(await _read_devtools_url(process))
        ids = itertools.count(1)
        async with aiohttp.ClientSession() as session, session.ws_connect(page_ws, max_msg_size=0) as socket:
            pending: dict[int, asyncio.Future[Any]] = {}
            load = asyncio.get_running_loop().create_future()

            async def reader() -> None:
                async for message in socket:
                    data = json.loads(message.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data)
                    method = data.get("method")
                    params = data.get("params", {})
                    if method == "Page.loadEventFired" and not load.done():
                        load.set_result(True)
                    elif method == "Runtime.exceptionThrown":
                        run.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
                    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                        run.console_errors.append(json.dumps(params.get("args", []))[:500])
                    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                        run.console_errors.append(params["entry"].get("text", ""))

            task = asyncio.create_task(reader())

            async def send(method: str, **params: Any) -> dict[str, Any]:
                number = next(ids)
                pending[number] = asyncio.get_running_loop().create_future()
                await socket.send_json({"id": number, "method": method, "params": params})
                answer = await pending[number]
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

            for domain in ("Page", "Runtime", "Log"):
                await send(f"{domain}.enable")
            await send("Page.navigate", url=url)
            await load
            evaluated = await send("Runtime.evaluate", expression=script, returnByValue=True)
            run.facts = evaluated["result"].get("value")
            metrics = await send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            shot = await send(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            run.screenshot = base64.b64decode(shot["data"])
            task.cancel()
    finally:
        process.kill()
        await process.wait()
    return run


def load_page(chromium: str, path: Path, script: str, profile: Path, width: int = 1400) -> PageRun:
    """Open ``path``, wait for the load event, run ``script`` (its value is returned), take a full-page PNG."""
    return asyncio.run(
        asyncio.wait_for(_run(chromium, path.resolve().as_uri(), script, profile, width), HANG_GUARD_SECONDS)
    )
