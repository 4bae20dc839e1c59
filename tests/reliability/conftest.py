"""Reliability tests: crash, load, bad input, provider faults, slow clients, security.

Sized to finish in a few minutes by default; ``--long`` (or ``DUOLOGUE_LONG=1``)
runs the bigger numbers. Each test records what it measured in ``figures``; the
figures are printed at the end of the run (and written as JSON to the file named by
``DUOLOGUE_FIGURES`` when that is set), which is where docs/RELIABILITY.md's
numbers come from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


HERE = Path(__file__).parent
_FIGURES: dict[str, Any] = {}


@dataclass(frozen=True)
class Sizes:
    long: bool
    crash_rounds: int
    load_clients: int
    load_sessions: int
    load_seconds: float
    load_creates: int
    bad_frames_per_kind: int
    oversized_frames: int


DEFAULT = Sizes(long=False, crash_rounds=50, load_clients=20, load_sessions=4, load_seconds=15.0,
                load_creates=10_000, bad_frames_per_kind=2_700, oversized_frames=4)
LONG = Sizes(long=True, crash_rounds=200, load_clients=20, load_sessions=4, load_seconds=120.0,
             load_creates=50_000, bad_frames_per_kind=25_000, oversized_frames=16)


def _is_long(config: pytest.Config) -> bool:
    return bool(config.getoption("--long", default=False)) or os.environ.get("DUOLOGUE_LONG") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    limit = 3600 if _is_long(config) else 600
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.timeout(limit))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _FIGURES:
        return
    terminalreporter.section(f"reliability figures ({'--long' if _is_long(config) else 'default'} sizes)")
    for name, value in _FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(value, sort_keys=True)}")
    target = os.environ.get("DUOLOGUE_FIGURES")
    if target:
        Path(target).write_text(json.dumps(_FIGURES, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def sizes(pytestconfig: pytest.Config) -> Sizes:
    return LONG if _is_long(pytestconfig) else DEFAULT


@pytest.fixture(scope="session")
def figures() -> dict[str, Any]:
    """Record a measured figure: ``figures["crash"] = {...}``."""
    return _FIGURES

