"""An ACP prompt through ``duologue acp``, against a bare ACP SDK agent.

Both agents are child processes on stdio, driven by the same client: the ``acp``
SDK's own client side (``spawn_agent_process``), as an editor drives them. Each
``session/prompt`` is answered by the same scripted emulator reply (``CHUNKS`` words,
``CHUNK_DELAY_S`` apart, no thinking), streamed to the client as
``agent_message_chunk`` updates, and timed from the call to its answer.

- Ours: ``duologue acp`` relays the prompt to a daemon (``session/send`` over
  ZeroMQ), whose turn asks the emulator through the Anthropic SDK and streams the
  deltas back; each prompt is in a new ACP session (made before the clock starts),
  so the history does not grow.
- Floor: ``python -m bench.acp_roundtrip --floor-agent``, an ACP agent of the SDK
  alone whose ``prompt`` calls ``AsyncAnthropic.messages.stream`` on the same
  emulator with the prompt and sends each text event on as a chunk: the least any
  ACP agent in front of a model pays.

The two are called in turn in one event loop, so load on the machine falls on both.
``python -m bench.acp_roundtrip [--quick]`` prints the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from duologue.daemon.emulator import Emulator, Reply

from .fixtures import Daemon, temp_home
from .harness import Row, latency_row, ms, now_ns, progress

CHUNKS = 12
CHUNK_DELAY_S = 0.01
MODEL = "claude-sonnet-5-5"
PROMPT = "Explain the borrow checker in one paragraph."
FLOOR = "bare ACP SDK agent streaming the same emulator reply (AsyncAnthropic)"
REPO = Path(__file__).resolve().parents[1]
OURS_ARGV = [sys.executable, "-m", "duologue.clients.cli", "acp"]
FLOOR_ARGV = [sys.executable, "-m", "bench.acp_roundtrip", "--floor-agent"]


def _reply() -> Reply:
    return Reply(chunks=[f"word{i} " for i in range(CHUNKS)], chunk_delay=CHUNK_DELAY_S, thinking="")


# --- the floor agent (a child process) --------------------------------------------------


def serve_floor() -> None:
    """An ACP agent with nothing but the SDK and the model call behind it."""
    import anthropic
    from acp import PROTOCOL_VERSION, run_agent, schema, text_block, update_agent_message

    class FloorAgent:
        def __init__(self) -> None:
            self.conn: Any = None
            self.model = anthropic.AsyncAnthropic(api_key=os.environ["ANTHROPIC_API_KEY"],
                                                  base_url=os.environ["ANTHROPIC_BASE_URL"], max_retries=0)
            self.sessions = 0

        def on_connect(self, conn: Any) -> None:
            self.conn = conn

        async def initialize(self, protocol_version: int, **kwargs: Any) -> schema.InitializeResponse:
            return schema.InitializeResponse(protocol_version=PROTOCOL_VERSION)

        async def new_session(self, cwd: str, **kwargs: Any) -> schema.NewSessionResponse:
            self.sessions += 1
            return schema.NewSessionResponse(session_id=f"floor-{self.sessions}")

        async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> schema.PromptResponse:
            text = "".join(block.text for block in prompt if getattr(block, "type", "") == "text")
            async with self.model.messages.stream(model=MODEL, max_tokens=1024,
                                                  messages=[{"role": "user", "content": text}]) as stream:
                async for event in stream:
                    if event.type == "text" and event.text:
                        await self.conn.session_update(session_id=session_id,
                                                       update=update_agent_message(text_block(event.text)))
            return schema.PromptResponse(stop_reason="end_turn")

    asyncio.run(run_agent(FloorAgent()))


# --- the client side ---------------------------------------------------------------------


class Counter:
    """The client's ``session/update`` handler: counts the chunks it is sent."""

    def __init__(self) -> None:
        self.chunks = 0

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        if update.session_update == "agent_message_chunk":
            self.chunks += 1

    async def request_permission(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def _side(stack: contextlib.AsyncExitStack, argv: list[str], env: dict[str, str], cwd: Path,
                emu: Emulator, *, model: str | None) -> Any:
    """A started agent; the returned coroutine function makes one timed prompt (ms)."""
    from acp import spawn_agent_process, text_block

    counter = Counter()
    conn, _proc = await stack.enter_async_context(spawn_agent_process(counter, *argv, env=env, cwd=cwd,
                                                                      use_unstable_protocol=True))
    await asyncio.wait_for(conn.initialize(protocol_version=1), 60)

    async def one() -> float:
        new = await conn.new_session(cwd=str(cwd))
        if model is not None:
            await conn.set_config_option(config_id="model", session_id=new.session_id, value=model)
        emu.script("anthropic", _reply())
        before = counter.chunks
        t0 = now_ns()
        answer = await conn.prompt(session_id=new.session_id, prompt=[text_block(PROMPT)])
        took = ms(now_ns() - t0)
        if answer.stop_reason != "end_turn" or counter.chunks == before:
            raise RuntimeError(f"{argv[-1]}: the prompt ended {answer.stop_reason} with no chunks")
        return took

    return one


async def _interleaved(daemon: Daemon, emu: Emulator, cwd: Path, n: int, warmup: int) -> tuple[list[float], list[float]]:
    floor_env = {**os.environ, "ANTHROPIC_API_KEY": emu.api_keys["anthropic"], "ANTHROPIC_BASE_URL": emu.url,
                 "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    async with contextlib.AsyncExitStack() as stack:
        ours = await _side(stack, OURS_ARGV, daemon.env, cwd, emu, model="sonnet")
        floor = await _side(stack, FLOOR_ARGV, floor_env, cwd, emu, model=None)
        for _ in range(warmup):
            await ours()
            await floor()
        out: tuple[list[float], list[float]] = ([], [])
        every = max(1, n // 4)
        for i in range(n):
            out[0].append(await ours())
            out[1].append(await floor())
            if (i + 1) % every == 0:
                progress(f"{i + 1}/{n} prompts on each side")
        return out


def run(quick: bool) -> list[Row]:
    n, warmup = (8, 2) if quick else (200, 10)
    progress(f"{n} prompts a side, {warmup} warm-up; reply: {CHUNKS} chunks {CHUNK_DELAY_S * 1000:.0f} ms apart")
    with Emulator() as emu, temp_home("dlg-bench-acp-") as home:
        cwd = home / "project"
        (cwd / ".git").mkdir(parents=True)
        with Daemon(home / "home", emulator=emu) as daemon:
            ours, floor = asyncio.run(_interleaved(daemon, emu, cwd, n, warmup))
    row = latency_row("session/prompt through duologue acp (stdio, a streamed 12-chunk reply)", ours, FLOOR, floor,
                      target="<= 1.5x floor", with_p99=False,
                      note="Both driven by the acp SDK's client side, prompts interleaved one for one; ours "
                           "relays to the daemon, whose turn streams the reply back. The note's difference is "
                           "what duologue adds per prompt.")
    row["met"] = row["ratio"] is not None and row["ratio"] <= 1.5
    row["note"] += f" Overhead {row['ours_p50_ms'] - row['floor_p50_ms']:+.1f} ms at p50."
    return [row]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.acp_roundtrip")
    parser.add_argument("--quick", action="store_true", help="a few prompts only")
    parser.add_argument("--floor-agent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_agent:
        serve_floor()
        return 0
    print(json.dumps(run(args.quick)[0], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
