"""A loopback emulator of the providers' HTTP APIs (Anthropic and Gemini today).

The real SDKs run unmodified against it (``base_url=emulator.url``), so tests and
offline users exercise the whole client stack without the internet. It plays every
provider of the registry it is given, each through that provider's emulator module
(``ProviderSpec.emulator``; what such a module offers is in :mod:`.apis`). It speaks and
demands what the real APIs do: thinking with signatures, thought signatures,
prompt-cache billing, the documented 400s and 404s. Tests script it per provider
with :class:`Reply` and :class:`Failure` steps; unscripted requests get a default
reply that shows which model answered and what history it received.
"""

from .models import ClaudeModel, GeminiModel, ModelTable
from .script import Failure, ReceivedRequest, Reply, ToolCall, Usage
from .server import Emulator, serve
from .signing import GEMINI_PLACEHOLDERS

__all__ = ["GEMINI_PLACEHOLDERS", "ClaudeModel", "Emulator", "Failure", "GeminiModel", "ModelTable",
           "ReceivedRequest", "Reply", "ToolCall", "Usage", "serve"]
