"""Console page latency with a real hold queue, against a bare Starlette+uvicorn baseline in the same run.

    .venv/bin/python bench/console_pages.py --held 200 [--requests 20]

A relay runs in this process with its console (as `serve` runs it), N messages are sent over SMTP and
held, the moderators' and senders' notices are delivered to a sink; then each console page is fetched
`--requests` times over one keep-alive HTTP connection. The baseline is a one-route Starlette app served
by uvicorn on the same event loop. Prints ms per request for each page and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.consolekit import add_moderator, prepare, serving, session, write
from tests.support import Layout, Sink, acreate_pair, free_port


async def _timed(client: httpx.AsyncClient, path: str, requests: int) -> float:
    assert (await client.get(path)).status_code == 200  # warm
    start = time.perf_counter()
    for _ in range(requests):
        assert (await client.get(path)).status_code == 200
    return (time.perf_counter() - start) / requests * 1000


async def baseline(requests: int) -> float:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/", hello)]), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        ms = await _timed(client, "/", requests)
    server.should_exit = True
    await task
    return ms


async def main(held: int, requests: int) -> None:
    bare = await baseline(requests)
    print(f"baseline (bare Starlette+uvicorn, one route): {bare:.1f} ms per request")
    sink = await Sink().start()
    layout = Layout(root=Path(tempfile.mkdtemp()) / "relay", smtp_port=free_port(), sink_port=sink.port)
    layout.write()
    prepare(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        ids = [await write(layout, pair, f"message {i}", f"Body {i} with a secret") for i in range(held)]
        await sink.wait_for(2 * held, timeout=600)
        async with session(layout, "ana") as client:
            worst = 0.0
            for path in ("/held", f"/held/{ids[-1]}", "/pairs", f"/pairs/{pair['id']}", "/audit",
                         "/static/console.css"):
                ms = await _timed(client, path, requests)
                worst = max(worst, ms)
                print(f"{path:28} {ms:7.1f} ms per request ({held} held)")
    await sink.stop()
    print(f"slowest console page / baseline ratio: {worst / bare:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.held, options.requests))
