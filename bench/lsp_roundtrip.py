"""Request round trip through ``duologue lsp``, against a bare pygls server.

Ours: an LSP client (``duologue.clients.lsp.stdio_client``) sends ``daemon/hello``
over the language server's stdio with LSP framing; the server validates the params
with the protocol's decoder, forwards the call to a daemon over ZeroMQ and answers
with the daemon's result.

Floor: the same client and framing against a bare pygls ``LanguageServer`` whose
``daemon/hello`` handler returns a result of the same shape at once, with nothing
behind it. The ratio is what the bridge and the daemon hop cost on top of pygls.

``python -m bench.lsp_roundtrip [--quick] [-n N]`` prints the figures;
``python -m bench.lsp_roundtrip --floor-server`` is the floor (run as a child).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from duologue.clients.lsp.stdio_client import LspClient
from duologue.protocol.methods import PROTOCOL_VERSION

from .fixtures import Daemon, temp_home
from .harness import latency_row, p50, p99, progress, time_async_calls

METHOD = "daemon/hello"
PARAMS = {"protocol_version": PROTOCOL_VERSION, "client": "bench"}
FLOOR = "bare pygls server answering at once (stdio)"
REPO = Path(__file__).resolve().parents[1]


def serve_floor() -> None:
    """The floor: a pygls server that answers ``daemon/hello`` without doing anything."""
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("floor", "0")

    @server.feature(METHOD)
    def hello(ls: LanguageServer, params: Any) -> dict[str, Any]:
        return {"protocol_version": PROTOCOL_VERSION, "daemon_version": "0.1.0", "emulator": True}

    server.start_io()


async def _round_trips(argv: list[str], env: dict[str, str] | None, cwd: str, n: int, warmup: int,
                       label: str) -> list[float]:
    client = await LspClient.spawn(argv, env=env, cwd=cwd)
    try:
        await client.initialize(Path(cwd), timeout=60)
        return await time_async_calls(lambda: client.request(METHOD, PARAMS), n, warmup=warmup, label=label)
    finally:
        try:
            await client.shutdown_and_exit(15)
        except Exception:
            await client.kill()


def measure(n: int, warmup: int = 50) -> dict[str, Any]:
    """N round trips through ``duologue lsp`` and through the floor: p50/p99 in ms, ratio."""
    with temp_home("dlg-bench-lsp-") as home, Daemon(home, builtin_emulator=True) as daemon:
        ours_argv = [sys.executable, "-m", "duologue.clients.cli", "lsp"]
        floor_argv = [sys.executable, "-m", "bench.lsp_roundtrip", "--floor-server"]
        progress(f"{n} round trips each, {warmup} warm-up")
        ours = asyncio.run(_round_trips(ours_argv, daemon.env, str(home), n, warmup, "duologue lsp"))
        floor_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
        floor = asyncio.run(_round_trips(floor_argv, floor_env, str(home), n, warmup, "bare pygls"))
    return {"ours_p50_ms": p50(ours), "ours_p99_ms": p99(ours), "floor_p50_ms": p50(floor),
            "floor_p99_ms": p99(floor), "ratio": p50(ours) / p50(floor), "n": n,
            "samples": (ours, floor)}


def run(quick: bool) -> list[dict[str, Any]]:
    n, warmup = (100, 10) if quick else (2000, 100)
    figures = measure(n, warmup)
    ours, floor = figures["samples"]
    return [latency_row(
        f"{METHOD} round trip through duologue lsp (stdio, LSP framing)", ours, FLOOR, floor,
        note="Ours validates the params with the protocol's decoder and forwards to the daemon over "
             "ZeroMQ; the floor is pygls alone. Same client, framing and machine, same run.")]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lsp_roundtrip")
    parser.add_argument("--quick", action="store_true", help="a few round trips only")
    parser.add_argument("-n", type=int, help="round trips for each side")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        serve_floor()
        return 0
    if args.n:
        figures = measure(args.n)
        figures.pop("samples")
    else:
        figures = run(args.quick)[0]
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
