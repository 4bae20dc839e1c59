"""Turns: a model answering a prompt, streamed to every client of the session.

- ``queue``: one queue per session and its worker; a turn's attempts and rounds.
- ``outcome``: how an attempt ended and what the turn does next (pure).
- ``request``: which stored messages a round sends.
- ``history``: those messages kept per session, settled turns prepared once.
- ``writer``: one reply's blocks as they stream, committed in checkpoints.
- ``recovery``: closing the turns a crash left open, before clients are served.
"""

from .queue import Turns

__all__ = ["Turns"]
