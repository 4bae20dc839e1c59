"""How every part of duologue opens the store's LMDB environment: one place for the
options that must agree (a reader opened with fewer named databases than the
writer made cannot open them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb

MAX_DBS = 32
"""Named databases an environment may hold: the store uses 16, with room to grow."""


def open_environment(path: Path, *, readonly: bool = False, lock: bool = True, **options: Any) -> lmdb.Environment:
    return lmdb.open(str(path), readonly=readonly, lock=lock, max_dbs=MAX_DBS, subdir=True, **options)
