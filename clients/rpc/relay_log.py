"""Logging for the stdio relays (``duologue lsp``, ``duologue acp``): their stdout
carries the protocol and must hold nothing else, so they log to a file of their own in
the state dir (stderr when it cannot be written)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from duologue.protocol.paths import Paths


def log_to_state_file(paths: Paths, name: str, *informative: str) -> None:
    """Send warnings (and INFO from the ``informative`` loggers) to ``<state>/<name>.log``."""
    try:
        state = Path(paths.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(state / f"{name}.log", encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {name}[{os.getpid()}] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for logger in informative:
        logging.getLogger(logger).setLevel(logging.INFO)
