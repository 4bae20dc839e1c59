"""Helpers for conversation tests: a daemon configured like a real user's, with keys
and base URLs pointing at an in-process provider emulator, and event collectors.
The keys are the emulator's own (``Emulator.api_keys``), the only ones it accepts.

Configuring the daemon through the environment and config file (rather than
--emulator) runs the production code path, and lets each test script the emulator
and read what it received.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from support import DaemonProcess

from duologue.clients.rpc.client import AsyncClient
from duologue.daemon.emulator import Emulator
from duologue.protocol import methods as m

def model_entry(model_id: str, short_name: str, display_name: str, *, context_window: int,
                max_output_tokens: int, **more: object) -> str:
    """A config file's ``[[models]]`` entry for a test model of Anthropic's, billed at
    $1 per million tokens; ``more`` adds fields (``images=False``)."""
    extra = "".join(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}\n"
                    for key, value in more.items())
    return (f'\n[[models]]\nid = "{model_id}"\nprovider = "anthropic"\ndisplay_name = "{display_name}"\n'
            f'short_name = "{short_name}"\ncontext_window = {context_window}\nmax_output_tokens = {max_output_tokens}\n'
            f'pricing = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }}\ntier = "fast"\n{extra}')


BLIND = model_entry("claude-blind", "blind", "Text only (test)", context_window=200_000, max_output_tokens=8_000,
                    images=False)
"""A Claude model the catalog says reads no images (alias ``claude-blind`` on the emulator)."""


def provider_daemon(home: Path, emulator: Emulator, *, anthropic_key: str | None = None,
                    gemini_key: str | None = None, config: str = "", top: str = "",
                    timeout_s: float = 3.0) -> DaemonProcess:
    """``top`` goes before the provider tables (top-level keys), ``config`` after.
    A key left out is the emulator's."""
    config_dir = home / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.toml").write_text(
        top + f"\n[providers.anthropic]\nmax_retries = 0\ntimeout_s = {timeout_s}\n"
        f"[providers.gemini]\nmax_retries = 0\ntimeout_s = {timeout_s}\n" + config)
    env = {
        "ANTHROPIC_API_KEY": anthropic_key or emulator.api_keys["anthropic"], "ANTHROPIC_BASE_URL": emulator.url,
        "GEMINI_API_KEY": gemini_key or emulator.api_keys["gemini"], "GEMINI_BASE_URL": emulator.url,
    }
    return DaemonProcess(home, emulator=False, env=env)


async def collect_turn(client: AsyncClient, turn_id: str, timeout: float = 90.0) -> list[Any]:
    """Every event the client receives until the turn's progress end (inclusive).

    The timeout is for a turn that never ends, not a speed limit: a failover's first
    turn imports both provider SDKs in a fresh daemon, several seconds of CPU each on a
    loaded machine."""
    events: list[Any] = []

    async def run() -> None:
        async for event in client.events():
            events.append(event)
            if isinstance(event, m.Progress) and event.turn_id == turn_id and event.kind == "end":
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def send_and_wait(client: AsyncClient, session_id: str, text: str, **kwargs: Any) -> list[Any]:
    """Attach (if needed), send, and collect the turn's events."""
    sent = await client.send(session_id, text, **kwargs)
    return await collect_turn(client, sent.turn_id)


def stored(events: list[Any]) -> list[Any]:
    return [e for e in events if not isinstance(e, m.Progress)]
