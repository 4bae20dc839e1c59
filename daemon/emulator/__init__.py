"""A loopback emulator of the Anthropic and Gemini HTTP APIs.

The real SDKs run unmodified against it (``base_url=emulator.url``), so tests and
offline users exercise the whole client stack without the internet. Tests script it
per provider with :class:`Reply` and :class:`Failure` steps; unscripted requests get a
default reply that shows which model answered and what history it received.
"""

from .script import Failure, ReceivedRequest, Reply, ToolCall, Usage
from .server import Emulator, serve

__all__ = ["Emulator", "Failure", "ReceivedRequest", "Reply", "ToolCall", "Usage", "serve"]
