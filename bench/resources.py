"""Figure 8: resources. Daemon memory, and how fast the CLI starts.

- Daemon RSS idle: a daemon configured for both providers (on the emulator, which
  runs in this process, not the daemon's), after one client said hello. Floor: a
  bare ``python -c`` interpreter sleeping; peer: an idle ipykernel (the Jupyter
  kernel of figure 1), when installed.
- Daemon RSS with 1,000 sessions open: 1,000 sessions created, each attached by a
  client and each having answered one turn (so the provider SDKs, the store pages
  and the turn machinery have all been used), the client still attached.
- CLI start-up: wall time of ``duologue list`` against a running daemon (spawn,
  import, connect, hello, one request, print, exit). Floor: ``python -c pass``, run
  in turn with it, one of each, 1,000 times; the same interpreter and environment.
  A third process of the same loop has a row of its own: importing the libraries
  the CLI needs (msgspec, pyzmq, argparse) and nothing else, exiting the ordinary
  way, against the same target. The CLI skips the interpreter's teardown
  (``exit_quickly``), which this floor pays.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from duologue.daemon.emulator import Emulator

from duologue.protocol import methods as m

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, p50, progress, rss_mb, time_interleaved, value_row


def _sleeper_rss() -> float:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        return rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def _kernel_rss(tmp: Path) -> float | None:
    try:
        from jupyter_client import KernelManager
    except ImportError:
        return None
    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter")
    km = KernelManager(transport="ipc", ip=str(tmp / "kernel"), connection_file=str(tmp / "kernel.json"))
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kc.kernel_info(reply=True, timeout=10)
        time.sleep(0.5)
        return rss_mb(km.provisioner.process.pid)  # type: ignore[union-attr]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


async def _hello(d: Daemon) -> None:
    async with d.client("bench-rss"):
        pass


async def _open_sessions(d: Daemon, n: int, batch: int) -> tuple[float, float]:
    """Create, attach and run one turn in each of n sessions. RSS after the first
    batch of turns (both SDKs loaded) and with all n sessions open and attached."""
    async with d.client("bench-rss", timeout=120) as c:
        sessions = []
        for i in range(n):
            s = await c.create_session(title=f"open {i}", model="haiku" if i % 2 else "flash")
            await c.attach(s.id, since_seq=s.last_seq)
            sessions.append(s)
        progress(f"{n} sessions created and attached; running one turn in each")
        first_batch = 0.0
        for start in range(0, n, batch):
            group = sessions[start:start + batch]
            sent = await asyncio.gather(*(c.send(s.id, "a short question") for s in group))
            ends = {x.turn_id for x in sent}
            while ends:
                event = await c.next_event(60)
                if isinstance(event, m.Progress) and event.kind == "end":
                    ends.discard(event.turn_id)
            if not first_batch:
                first_batch = rss_mb(d.pid)
            if (start + batch) % (n // 4 or 1) == 0:
                progress(f"turns: {start + batch}/{n}")
        await asyncio.sleep(0.5)
        return first_batch, rss_mb(d.pid)


LIBRARIES = "import msgspec, zmq, argparse"
"""What the CLI cannot start without: the libraries every command uses."""


def _cli_times(d: Daemon, n: int) -> tuple[list[float], ...]:
    """``duologue list``, ``python -c pass`` and ``python -c "import <LIBRARIES>"`` run
    in turn, n times each. Our modules' bytecode is compiled first, as any first run
    leaves it (an environment with PYTHONDONTWRITEBYTECODE would otherwise make every
    run compile our sources, while the floors' are all compiled)."""
    import compileall

    import duologue.clients
    import duologue.protocol

    for package in (duologue.clients, duologue.protocol):
        for folder in package.__path__:
            compileall.compile_dir(folder, quiet=1)
    exe = str(Path(sys.executable).with_name("duologue"))

    def cli() -> None:
        subprocess.run([exe, "list"], env=d.env, check=True, stdout=subprocess.DEVNULL)

    def bare() -> None:
        subprocess.run([sys.executable, "-c", "pass"], env=d.env, check=True)

    def libraries() -> None:
        subprocess.run([sys.executable, "-c", LIBRARIES], env=d.env, check=True)

    return time_interleaved(cli, bare, libraries, n=n, warmup=5,
                            label="duologue list | python -c pass | libraries")


def run(quick: bool) -> list[Row]:
    n_sessions, batch, cli_n = (50, 25, 10) if quick else (1000, 50, 1000)
    with Emulator() as emu, temp_home() as tmp:
        with Daemon(tmp / "home", emulator=emu) as d:
            asyncio.run(_hello(d))
            time.sleep(0.5)
            idle = rss_mb(d.pid)
            progress(f"daemon idle RSS {idle:.1f} MiB")
            cli, bare, libraries = _cli_times(d, cli_n)
            loaded, busy = asyncio.run(_open_sessions(d, n_sessions, batch))
            progress(f"daemon RSS with {n_sessions} sessions open {busy:.1f} MiB")
        sleeper = _sleeper_rss()
        kernel = _kernel_rss(tmp)
    rows = [value_row("daemon RSS, idle", idle, "MiB", "bare python interpreter", sleeper)]
    if kernel is not None:
        rows.append(value_row("daemon RSS, idle (vs peer)", idle, "MiB", "idle ipykernel", kernel))
    rows += [
        value_row(f"daemon RSS, {n_sessions:,} sessions open", busy, "MiB", "bare python interpreter", sleeper,
                  note=f"each session created, attached and answered one turn (half haiku, half flash); "
                       f"the client is still attached. After the first {batch} turns (both SDKs loaded): "
                       f"{loaded:.1f} MiB, so about {(busy - loaded) * 1024 / max(1, n_sessions - batch):.0f} KiB "
                       f"per further session"),
        latency_row("CLI start-up: `duologue list` against a running daemon", cli, "python -c pass", bare,
                    target="<= 3x python -c pass", met=p50(cli) <= 3 * p50(bare), with_p99=len(cli) >= 1000,
                    note="wall time of the whole process (spawn, imports, connect, hello, list, print, exit), "
                         "run in turn with the floor, our bytecode cached. In the same loop, "
                         f"`python -c \"{LIBRARIES}\"` alone: {p50(libraries):.1f} ms at p50, "
                         f"{p50(libraries) / p50(bare):.2f}x the floor"),
        latency_row("CLI start-up floor: importing the libraries the CLI needs, nothing else", libraries,
                    "python -c pass", bare, target="<= 3x python -c pass", met=p50(libraries) <= 3 * p50(bare),
                    with_p99=len(libraries) >= 1000,
                    note=f"`python -c \"{LIBRARIES}\"`, the same loop as the row above, with the "
                         "interpreter's ordinary teardown at exit (the CLI skips it); `duologue list` costs "
                         f"{p50(cli) / p50(libraries):.2f}x it"),
    ]
    return rows
