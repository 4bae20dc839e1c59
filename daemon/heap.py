"""What is loaded once is kept out of the garbage collector's full passes.

CPython's oldest-generation collection walks every object it tracks, with the GIL
held. The provider SDKs bring some 200,000 of them (pydantic models and their
validators, typing machinery, classes and their dictionaries): one full pass then
took about 175 ms on a 2-core machine, and for that long every session's deltas,
every client's request and every checkpoint timer stopped. Such a pass comes
whenever enough new objects have survived since the last one, which a long
session's request provokes several times a turn (google-genai validates it into
pydantic models): a status call during a turn on a 10,000-message session waited
up to 250 ms (bench/status_during_long_turn.py).

What lives as long as the daemon (modules, classes, the SDKs' tables) is therefore
frozen (``gc.freeze``) once loaded: after start-up, and after each SDK's import. A
collection first clears the garbage of the import, so nothing already unreachable
is frozen. Frozen objects are still freed by reference counting; only a cycle among
objects that were alive at a freeze (start-up's own state, a turn in flight while
an SDK loaded) would never be collected, a bounded cost paid once per SDK.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
import time
from types import ModuleType

log = logging.getLogger(__name__)


def settle(why: str) -> None:
    """Collect, then freeze what survives: it is not walked by full passes again."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("%s: %d objects kept out of the collector's full passes (%.0f ms)",
             why, gc.get_freeze_count(), (time.perf_counter() - started) * 1000)


def load_sdk(module: str) -> ModuleType:
    """Import an SDK's module, settling the heap when this import loaded it."""
    if module not in sys.modules:
        importlib.import_module(module)
        settle(f"{module} loaded")
    return sys.modules[module]
