"""Why the store cannot be used, each with a message that says what to do."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be used as it is; the message says why and what to do."""


class StoreVersionError(StoreError):
    pass


class StoreDamaged(StoreError):
    """The store's files are not whole (see ``check``); it was not opened."""


class StoreWriteError(StoreError):
    """A write transaction could not be committed (a full disk, an I/O error). LMDB
    aborted it, so nothing of it was written and the store is as before; a later
    write succeeds once the cause is gone."""

    def __init__(self, message: str, *, disk_full: bool):
        super().__init__(message)
        self.disk_full = disk_full


class StoreMigrationError(StoreError):
    """A migration step failed; its transaction was aborted, so the store is still
    at the version before that step."""
