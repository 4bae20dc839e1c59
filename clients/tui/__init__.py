"""The interactive terminal chat (``duologue chat`` on a TTY), built on Textual.

Like every client it depends on ``duologue.protocol`` and the client library only.
"""

from .app import ChatApp, run_tui

__all__ = ["ChatApp", "run_tui"]
