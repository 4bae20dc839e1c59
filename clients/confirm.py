"""Asking a person before a command destroys something of theirs.

``duologue rm`` deletes sessions for good: the daemon keeps no copy and has no undo.
So on a terminal it names what would go and waits for a yes; anywhere else (a script,
a pipe, a test) it refuses unless ``--yes`` says the caller means it, because nobody
is there to answer and a silent default either way would be wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from duologue.protocol.entities import Session


class NotConfirmed(Exception):
    """Nobody agreed to the deletion; nothing was deleted. The message says why."""


def keep_a_copy_hint(session_ids: Sequence[str]) -> str:
    """How to keep what ``rm`` would delete: an export that an import brings back."""
    sid = session_ids[0] if len(session_ids) == 1 else "ID"
    return (f"deleting cannot be undone; to keep a copy first: `duologue export {sid} --format json "
            f"-o {sid[:8].lower()}.json` (`duologue import --from duologue FILE` brings it back)")


def confirm_removal(sessions: Sequence[Session], *, yes: bool) -> None:
    """Return when the deletion may go ahead; raise :class:`NotConfirmed` otherwise."""
    if yes:
        return
    ids = [s.id for s in sessions]
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise NotConfirmed(f"not deleting {len(ids)} session{'s' if len(ids) != 1 else ''} without "
                           "confirmation: there is no terminal to ask on; pass --yes to delete")
    err = sys.stderr
    err.write(f"delete {len(ids)} session{'s' if len(ids) != 1 else ''}?\n")
    for s in sessions:
        err.write(f"  {s.id}  {s.title[:60]}  ({s.message_count} messages)\n")
    err.write(keep_a_copy_hint(ids) + "\n")
    err.write("delete? [y/N] ")
    err.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise NotConfirmed("nothing deleted")
