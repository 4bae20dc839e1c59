"""A process of its own that times ``daemon/status`` round trips until told to stop.

Run as ``python -m bench.status_probe`` with the daemon's environment. It calls
``daemon/status`` back to back until a line (or the end) arrives on its stdin, then
writes one ``start_ns end_ns`` line a call to stdout (``time.perf_counter_ns``, the
system's monotonic clock, comparable with the parent's). A bench that serves a
provider emulator in its own process times status calls here, so what the emulator
does with a request (parsing megabytes of JSON holds the interpreter) never lands
in the daemon's figures.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

from duologue.clients.rpc.client import AsyncClient
from duologue.protocol.paths import locate


async def _probe(stop: threading.Event) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    async with AsyncClient(locate(dict(os.environ)), autostart=False, client_name="bench-status-probe") as c:
        await c.status()
        print("ready", flush=True)
        while not stop.is_set():
            t0 = time.perf_counter_ns()
            await c.status()
            calls.append((t0, time.perf_counter_ns()))
    return calls


def main() -> None:
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    calls = asyncio.run(_probe(stop))
    sys.stdout.write("".join(f"{t0} {t1}\n" for t0, t1 in calls))


if __name__ == "__main__":
    main()
