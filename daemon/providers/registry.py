"""Every provider the daemon knows, each described once, in one table.

A :class:`ProviderSpec` holds what the daemon must know about a provider besides how
to speak to it: its name (in the catalog, on the wire, in the config file's
``[providers.<name>]`` table), the name a person reads, where its key and base URL
come from, its adapter, the function that maps its SDK's exceptions, its models
listing, which auto rules prefer it and which emulator module plays it offline.
Settings, routing, discovery, the emulator's server and (through ``daemon/status``)
the clients read this table; no other module names a provider.

Code is named by dotted path (``"package.module:attribute"``) and imported on first
use, so reading the table loads no SDK: an SDK loads when its provider first answers
a turn or lists its models, never when the daemon or a client starts.

Adding a provider takes three files and nothing else:

1. ``daemon/providers/<name>.py``, the adapter: a class whose ``connect(Connection)``
   builds it and whose ``stream`` yields the events of ``base.py``, and the function
   that maps its SDK's exceptions to ``ProviderError``. Its models listing may live
   there too (the two built-in ones are in ``models_list.py``).
2. One :class:`ProviderSpec` in :data:`BUILTIN` below.
3. ``daemon/emulator/<name>_api.py``: the provider's HTTP API as the emulator plays it,
   a module-level ``API`` as ``daemon/emulator/apis.py`` describes.

Its models are data: entries in ``daemon/catalog.toml`` (or a user's ``[[models]]``).
``tests/test_architecture.py`` fails when another module names a provider, and
``tests/providers/test_registry.py`` adds a made-up third provider to prove the rest
of the daemon needs no change.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from duologue.protocol.entities import ThinkingControl

if TYPE_CHECKING:
    from .base import Connection, ErrorMapper, ListedModel, Provider

AutoRule = Literal["long_context", "reasoning", "code", "long_conversation", "short_opening", "fallback"]
"""The situations the auto policy (``routing.Routing.choose_auto``) has a preference
for: a history or attached context too long for most windows, a prompt asking for
careful reasoning, code, a long conversation, a short opening question, and the
default when no rule decides."""

Lister = Callable[[str, "str | None", float], Awaitable["list[ListedModel]"]]
"""A models listing: ``(api_key, base_url, timeout_s) -> the models it lists``."""

NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def load(path: str) -> Any:
    """The attribute a ``"package.module:attribute"`` path names (the module alone
    when there is no ``:``), imported now."""
    module, _, attribute = path.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """One provider, as the daemon needs to know it."""

    name: str
    """Lower-case, stable: stored in every catalog entry and refusal that names it."""
    display_name: str
    key_env: tuple[str, ...]
    """Environment variables that may hold the API key, the first one set wins over the
    config file's ``api_key``. The first is the one messages tell a person to set."""
    base_url_env: str
    adapter: str
    """``module:Class``; the class has ``connect(Connection)`` returning the adapter."""
    map_error: str
    """``module:function``, an ``ErrorMapper``: the one place this SDK's exceptions
    become ``ProviderError``, for turns and for the models listing alike."""
    sdk: str
    """The module whose import loads the SDK; imported in a worker thread before the
    first listing, so a slow import never stalls the daemon's loop."""
    loggers: tuple[str, ...] = ()
    """The SDK's loggers, kept at WARNING (their per-request lines drown the log)."""
    listing: str | None = None
    """``module:function``, a :data:`Lister`; None: the provider has no models endpoint
    and discovery leaves its catalog entries as they are."""
    emulator: str
    """The module whose ``API`` plays this provider's HTTP API in the emulator."""
    listed_thinking: ThinkingControl
    """How this provider's models set thinking depth, for an entry the catalog says
    cannot think but the models endpoint says can."""
    auto: frozenset[AutoRule] = field(default_factory=frozenset)
    """The auto rules that prefer this provider's models."""
    timeout_s: float = 60.0
    """The read timeout when the config file does not set one."""
    max_retries: int = 2
    """The SDK's own retries when the config file does not set them."""

    def connect(self, connection: Connection) -> Provider:
        """A new adapter on ``connection`` (this is where the SDK loads)."""
        return load(self.adapter).connect(connection)

    def error_mapper(self) -> ErrorMapper:
        return load(self.map_error)

    def lister(self) -> Lister | None:
        return load(self.listing) if self.listing else None


class Registry:
    """The providers, in order: lists follow it, and when two providers fit an auto
    rule equally the first one wins."""

    def __init__(self, specs: Iterable[ProviderSpec]):
        self._specs: dict[str, ProviderSpec] = {}
        for spec in specs:
            if not NAME.match(spec.name):
                raise ValueError(f"provider name {spec.name!r} must be lower-case letters, digits, - or _")
            if spec.name in self._specs:
                raise ValueError(f"provider {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __getitem__(self, name: str) -> ProviderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown provider {name!r}; known: {', '.join(self._specs)}") from None

    @property
    def loggers(self) -> tuple[str, ...]:
        """Every provider SDK's loggers."""
        return tuple(name for spec in self for name in spec.loggers)

    def preferred(self, rule: AutoRule) -> str:
        """The provider whose models ``rule`` prefers; "" when none is named."""
        return next((spec.name for spec in self if rule in spec.auto), "")

    def plus(self, *specs: ProviderSpec) -> Registry:
        """This registry with ``specs`` added after its own."""
        return Registry([*self, *specs])


ANTHROPIC = ProviderSpec(
    name="anthropic",
    display_name="Anthropic Claude",
    key_env=("ANTHROPIC_API_KEY",),
    base_url_env="ANTHROPIC_BASE_URL",
    adapter="duologue.daemon.providers.anthropic:AnthropicProvider",
    map_error="duologue.daemon.providers.anthropic:map_anthropic_error",
    sdk="anthropic",
    loggers=("anthropic",),
    listing="duologue.daemon.providers.models_list:list_anthropic",
    emulator="duologue.daemon.emulator.anthropic_api",
    listed_thinking="budget",
    auto=frozenset({"reasoning", "code", "long_conversation", "short_opening", "fallback"}),
)

GEMINI = ProviderSpec(
    name="gemini",
    display_name="Google Gemini",
    key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    base_url_env="GEMINI_BASE_URL",
    adapter="duologue.daemon.providers.gemini:GeminiProvider",
    map_error="duologue.daemon.providers.gemini:map_gemini_error",
    sdk="google.genai",
    loggers=("google_genai",),
    listing="duologue.daemon.providers.models_list:list_gemini",
    emulator="duologue.daemon.emulator.gemini_api",
    listed_thinking="level",
    auto=frozenset({"long_context"}),
)

BUILTIN = Registry([ANTHROPIC, GEMINI])
"""The providers this build of duologue speaks to."""
