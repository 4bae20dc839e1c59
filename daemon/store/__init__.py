"""The store: every session's events and records in one LMDB environment.

- ``records``: the ``Store`` (sessions, events, messages, the indexes).
- ``imports``: what imports took and their batches, written with the sessions.
- ``keys``: the key layout.
- ``errors``: why a store cannot be used, each saying what to do.
- ``streams``: a reply's text kept once (folded from deltas, left out of completions).
- ``migrations``: schema versions and the steps between them, a backup before each.
- ``check``: damage found before LMDB maps a file, and the page walk of ``db check``.
- ``maintenance``: the ``duologue db`` commands.
"""

from .errors import StoreDamaged, StoreError, StoreMigrationError, StoreVersionError, StoreWriteError
from .imports import ImportMarks
from .keys import encode_cursor
from .records import SCHEMA_VERSION, Change, Store, opens_turn
from .streams import stored_completion, stored_delta

__all__ = ["SCHEMA_VERSION", "Change", "ImportMarks", "Store", "StoreDamaged", "StoreError",
           "StoreMigrationError", "StoreVersionError", "StoreWriteError", "encode_cursor",
           "opens_turn", "stored_completion", "stored_delta"]
