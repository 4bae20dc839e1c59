"""Provider adapters: one module per SDK, one neutral contract (``base``), and the
registry (``registry``) that describes each provider once.

Importing this package does not import any SDK; each adapter imports its SDK when
it is constructed.
"""

from .anthropic import AnthropicProvider
from .base import (
    Finished,
    Provider,
    ProviderError,
    StreamEvent,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    TurnRequest,
)
from .gemini import GeminiProvider

__all__ = [
    "AnthropicProvider",
    "Finished",
    "GeminiProvider",
    "Provider",
    "ProviderError",
    "StreamEvent",
    "TextDelta",
    "ToolCallEvent",
    "ToolSpec",
    "TurnRequest",
]
