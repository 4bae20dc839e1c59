"""Which model answers a turn: availability, the auto policy and failover.

Providers are built lazily on first use (their SDKs load then, not at daemon start).
A provider is available when it has a key (on the emulator, the key the emulator
made for this start: see ``Settings.on_emulator``).
A provider that fails with retryable errors ``COOLDOWN_AFTER`` times in a row cools
down for ``COOLDOWN_S`` seconds: auto and failover avoid it meanwhile, and a turn
that asks for it explicitly gets MODEL_UNAVAILABLE with the time it comes back.

The auto policy is a short list of readable rules; the first that matches decides,
and its reason is recorded on the ModelSwitch, so every choice can be explained.
Which provider a rule prefers is the registry's word (``ProviderSpec.auto``); the
rules themselves name no provider.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import msgspec

from duologue.protocol.entities import CodeContextBlock, ImageBlock, Message, ModelInfo, Tier
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.methods import ProviderStatus

from . import heap
from .catalog import Catalog
from .providers.offloop import OffLoop, ProviderLoop
from .providers.registry import AutoRule
from .settings import Settings

COOLDOWN_AFTER = 3
COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 300.0
"""The longest a server's requested wait keeps a provider cooling down."""

_TIER_RANK: dict[Tier, int] = {"fast": 0, "balanced": 1, "frontier": 2}
_HARD_WORDS = re.compile(r"\b(prove|design|architect\w*|think (hard|carefully)|deep(ly)?|tricky|subtle)\b", re.I)


def estimate_tokens(text: str) -> int:
    """A provider-neutral estimate (about four characters a token)."""
    return len(text) // 4 + 1


IMAGE_TOKENS = 1_600
"""What one image costs a prompt, at most: Claude scales a larger one down to about
1,600 tokens; Gemini bills 258 to 1,120 a picture. Its base64 is not read as text."""


def message_tokens(msg: Message) -> int:
    total = 0
    for block in msg.content:
        if isinstance(block, ImageBlock):
            total += IMAGE_TOKENS
        else:
            total += estimate_tokens(msgspec.json.encode(block).decode())
    return total


@dataclass
class _Health:
    consecutive_failures: int = 0
    cooling_until: float = 0.0


@dataclass(frozen=True)
class Choice:
    model: ModelInfo
    reason: str


class Routing:
    def __init__(self, settings: Settings, catalog: Catalog, emulator_url: str | None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.catalog = catalog
        self.emulator_url = emulator_url
        self._clock = clock
        self._providers: dict[str, Any] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self._sdk_loop = ProviderLoop()
        self._health: dict[str, _Health] = {}
        self._statuses = [ProviderStatus(
            name=name,
            display_name=settings.registry[name].display_name,
            key_env=list(settings.registry[name].key_env),
            configured=cfg.configured,
            emulator=emulator_url is not None,
            base_url=cfg.base_url,
        ) for name, cfg in settings.providers.items()]
        """What each provider's status says of its settings (they do not change while
        the daemon runs); ``statuses`` adds a cool-down."""

    # --- providers ----------------------------------------------------------------------

    def configured(self, provider: str) -> bool:
        return self.settings.providers[provider].configured

    def cooling_until(self, provider: str) -> float:
        return self._health.get(provider, _Health()).cooling_until

    def cooling(self, model: ModelInfo) -> bool:
        return self.cooling_until(model.provider) > self._clock()

    def available(self, model: ModelInfo) -> bool:
        """Configured, not cooling down, and not retired by its provider."""
        return (model.available and self.configured(model.provider)
                and self.cooling_until(model.provider) <= self._clock())

    async def ready(self, name: str) -> Any:
        """The provider adapter, built on first use (this is where an SDK loads) in a
        worker thread, so loading an SDK (a second or more) does not freeze every
        client's requests; its SDK then runs on the provider loop (``offloop``)."""
        if name not in self._providers:
            async with self._building.setdefault(name, asyncio.Lock()):
                if name not in self._providers:
                    built = await asyncio.to_thread(self._build, name)
                    self._providers[name] = OffLoop(built, self._sdk_loop)
        return self._providers[name]

    def _build(self, name: str) -> Any:
        spec = self.settings.registry[name]
        heap.load_sdk(spec.sdk)
        return spec.connect(self.settings.providers[name].connection())

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
        self._sdk_loop.close()

    def record_success(self, provider: str) -> None:
        self._health[provider] = _Health()

    def record_failure(self, provider: str, retryable: bool, retry_after: float | None = None) -> None:
        """Count a failure; repeated ones cool the provider down. A server's own wait
        (``retry-after``, Gemini's ``RetryInfo``) cools it for that long at once (up to
        ``MAX_COOLDOWN_S``), so the next turns go to the other provider instead of
        spending the quota again a second later."""
        if not retryable:
            return
        health = self._health.setdefault(provider, _Health())
        health.consecutive_failures += 1
        until = self._clock() + min(retry_after, MAX_COOLDOWN_S) if retry_after else 0.0
        if health.consecutive_failures >= COOLDOWN_AFTER:
            until = max(until, self._clock() + COOLDOWN_S)
        health.cooling_until = max(health.cooling_until, until)

    def statuses(self) -> list[ProviderStatus]:
        """Each provider's status, with until when it cools down if it does."""
        now = self._clock()
        out = []
        for status in self._statuses:
            remaining = self.cooling_until(status.name) - now
            out.append(status if remaining <= 0 else msgspec.structs.replace(
                status, cooling_down_until=datetime.fromtimestamp(time.time() + remaining, timezone.utc)))
        return out

    def catalog_with_availability(self) -> list[ModelInfo]:
        return [msgspec.structs.replace(mi, available=self.available(mi)) for mi in self.catalog.models]

    # --- choosing -----------------------------------------------------------------------

    def require_available(self, model: ModelInfo) -> None:
        if not self.configured(model.provider):
            raise RpcError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"{model.id} needs the {model.provider} provider, which has no API key; "
                f"set {self.settings.registry[model.provider].key_env[0]} "
                "or start the daemon with --emulator",
                {"model": model.id, "provider": model.provider},
            )
        if not model.available:
            raise RpcError(ErrorCode.MODEL_UNAVAILABLE,
                           f"{model.id} is retired by {model.provider}; switch to another model "
                           "(`duologue models` lists them)", {"model": model.id, "provider": model.provider})
        if not self.available(model):
            wait = int(self.cooling_until(model.provider) - self._clock()) + 1
            raise RpcError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"{model.provider} failed repeatedly and is cooling down for {wait}s more; "
                "pick a model of another provider or retry later",
                {"model": model.id, "provider": model.provider, "retry_after_s": wait},
            )

    def choose_auto(self, prompt: Message, current: str, history_messages: int = 0,
                    history_tokens: int = 0) -> Choice:
        """The auto policy: the first matching rule picks a tier and a preference.
        ``history_messages`` and ``history_tokens`` count what came before the prompt
        (the caller keeps them counted: the history is not read again for this)."""
        prompt_tokens = message_tokens(prompt)
        context_blocks = [b for b in prompt.content if isinstance(b, CodeContextBlock)]
        context_tokens = sum(estimate_tokens(b.text) for b in context_blocks)
        history_tokens += prompt_tokens
        text = prompt.text
        has_code = bool(context_blocks) or "```" in text
        rules: list[tuple[bool, Tier, AutoRule, str]] = [
            (history_tokens > 150_000, "balanced", "long_context",
             f"history of ~{history_tokens} tokens: a long-context model"),
            (context_tokens > 20_000, "balanced", "long_context",
             f"~{context_tokens} tokens of attached context: a long-context model"),
            (bool(_HARD_WORDS.search(text)), "frontier", "reasoning",
             "the prompt asks for careful reasoning"),
            (has_code, "balanced", "code",
             f"code present ({len(context_blocks)} attached block(s)): a strong coding model"),
            (history_messages >= 30, "balanced", "long_conversation",
             f"a deep conversation ({history_messages} messages)"),
            (prompt_tokens < 60 and not history_messages, "fast", "short_opening",
             "a short opening question: a fast model"),
        ]
        prefer = self.settings.registry.preferred
        for matched, tier, rule, why in rules:
            if matched:
                model = self._pick(tier, prefer(rule), need_tokens=history_tokens)
                if model:
                    return Choice(model, f"auto: {why}")
        current_model = self.catalog.find(current)
        if current_model and self.available(current_model):
            return Choice(current_model, "auto: no rule matched; keeping the current model")
        model = self._pick("balanced", prefer("fallback"), need_tokens=history_tokens)
        if model is None:
            raise RpcError(ErrorCode.MODEL_UNAVAILABLE,
                           "no model is available: configure an API key or start with --emulator")
        return Choice(model, "auto: default balanced model")

    def _pick(self, tier: Tier, prefer: str, need_tokens: int = 0,
              exclude_provider: str | None = None) -> ModelInfo | None:
        """The available model of ``tier`` with room for the history, preferring
        ``prefer``'s provider, then the cheapest; failing that, the nearest tier."""
        candidates = [mi for mi in self.catalog.models
                      if self.available(mi) and mi.provider != exclude_provider
                      and mi.context_window > need_tokens]
        if not candidates:
            return None

        def rank(mi: ModelInfo) -> tuple[int, bool, float]:
            return (abs(_TIER_RANK[mi.tier] - _TIER_RANK[tier]), mi.provider != prefer,
                    mi.pricing.input_per_mtok + mi.pricing.output_per_mtok)

        return min(candidates, key=rank)

    def pick_for_summary(self) -> ModelInfo | None:
        """Without a configured summary model: the cheapest available fast model."""
        return self._pick("fast", prefer="")

    def failover_target(self, failed: ModelInfo) -> ModelInfo | None:
        """An equivalent-tier model of another provider, when one is available."""
        return self._pick(failed.tier, prefer="", exclude_provider=failed.provider)
