"""Model discovery: what the providers' models endpoints say about the catalog's ids.

With a key, each provider's listing (``providers.models_list``) is read and kept in the
store with the time it was fetched. Within ``ttl_s`` the kept listing is used as it is;
after that it is read again. Each catalog entry of that provider is then reconciled
with it, always starting from the catalog's own entry (so a model that comes back is
active again):

- an id the provider did not list becomes lifecycle ``unlisted`` (still offered: a
  key may see fewer models than exist, and the turn's own 404 is the final word);
- ``deprecated`` is kept as the provider says, with its ``retires_at``;
- ``retired`` becomes lifecycle ``retired`` and ``available`` false;
- ``context_window`` and ``max_output_tokens`` come from the listing's limits;
- thinking support: a model listed without thinking thinks ``none``; for Claude, the
  accepted ``thinking.type`` values decide the control (``adaptive`` with effort:
  ``effort``; ``enabled`` alone: ``budget``) and whether it can be turned off
  (neither ``disabled`` nor ``between_tools``, Sonnet 5.5's way to turn up-front thinking off:
  ``always``). An entry the catalog says cannot think, listed as thinking, takes its
  provider's usual control (``ProviderSpec.listed_thinking``). Whether a model thinks
  by default is not in any listing, so that part stays as the catalog says.
- image input: Claude's ``capabilities.image_input`` sets ``images``; Gemini's listing
  says nothing of it, so the catalog's word stands.

Nothing here ever blocks the daemon: :meth:`Discovery.startup` applies the kept
listings at once and fetches stale ones with a timeout; a failure is logged (the
message names the provider and the HTTP status, never the key) and leaves the
catalog as it was. Against the emulator, nothing is fetched at startup (its
scripted replies are for turns); ``models/refresh`` asks explicitly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import msgspec

from duologue.protocol.entities import ModelInfo, Thinking, ThinkingControl, Timestamp
from duologue.protocol.errors import ErrorCode, RpcError
from duologue.protocol.methods import ModelsResult, ProviderListing

from .catalog import Catalog
from .providers.models_list import ListedModel, list_models
from .providers.registry import BUILTIN, Registry

if TYPE_CHECKING:
    from .settings import Settings
    from .store import Store

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 24 * 3600.0
DEFAULT_TIMEOUT_S = 20.0


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's whole listing as kept in the store."""

    provider: str
    fetched_at: Timestamp
    models: list[ListedModel]


Lister = Callable[[str], Awaitable[list[ListedModel]]]
"""Reads one provider's listing (``providers.models_list.list_models`` bound to a key)."""


@dataclass
class _State:
    fetched_at: datetime | None = None
    models: int = 0
    error: str | None = None


def reconcile(entry: ModelInfo, listed: ListedModel | None, *, configured: bool = False,
              registry: Registry = BUILTIN) -> ModelInfo:
    """The catalog entry as the provider's listing amends it (``None``: not listed).

    An entry the user wrote in the config file keeps its limits and thinking (a
    smaller window on purpose, a proxy's own limits); only its lifecycle follows."""
    if listed is None:
        return msgspec.structs.replace(entry, lifecycle="unlisted")
    if configured:
        return msgspec.structs.replace(entry, lifecycle=listed.lifecycle,
                                       available=entry.available and listed.lifecycle != "retired")
    thinking, control = _thinking(entry, listed, registry[entry.provider].listed_thinking)
    return msgspec.structs.replace(
        entry,
        context_window=listed.max_input_tokens or entry.context_window,
        max_output_tokens=listed.max_output_tokens or entry.max_output_tokens,
        thinking=thinking,
        thinking_control=control,
        images=entry.images if listed.images is None else listed.images,
        lifecycle=listed.lifecycle,
        available=entry.available and listed.lifecycle != "retired",
    )


def _thinking(entry: ModelInfo, listed: ListedModel, usual: ThinkingControl) -> tuple[Thinking, ThinkingControl]:
    if listed.thinking is None:
        return entry.thinking, entry.thinking_control
    if not listed.thinking:
        return "none", "none"
    thinking, control = entry.thinking, entry.thinking_control
    types = listed.thinking_types
    if types is not None:
        if "adaptive" in types and listed.effort is not False:
            control = "effort"
        elif "enabled" in types:
            control = "budget"
        if "disabled" not in types and "between_tools" not in types:
            thinking = "always"
        elif thinking == "always":
            thinking = "default"
    if thinking == "none":
        thinking = "optional"
    if control == "none":
        control = usual
    return thinking, control


class Discovery:
    def __init__(self, catalog: Catalog, store: Store, lister: Lister, providers: Iterable[str], *,
                 ttl_s: float = DEFAULT_TTL_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 fetch_at_startup: bool = True, registry: Registry = BUILTIN,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.catalog = catalog
        self.store = store
        self.providers = list(providers)
        self.registry = registry
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.fetch_at_startup = fetch_at_startup
        self._lister = lister
        self._clock = clock
        self._original = {mi.id: mi for mi in [*catalog.models, *catalog.legacy]}
        self._state = {p: _State() for p in self.providers}
        self._retires_at: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task | None = None
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(Listing)

    @classmethod
    def for_daemon(cls, catalog: Catalog, store: Store, settings: Settings, emulator_url: str | None,
                   **kwargs: object) -> Discovery:
        """Discovery for the configured providers that have a models endpoint, with
        their keys and base URLs (on the emulator, its own: see ``Settings.on_emulator``).
        The SDKs load on the first fetch, not here."""
        registry = settings.registry
        providers = [name for name, cfg in settings.providers.items()
                     if cfg.configured and registry[name].listing is not None]

        async def lister(provider: str) -> list[ListedModel]:
            connection = settings.providers[provider].connection()
            return await list_models(provider, connection.api_key, connection.base_url,
                                     min(connection.timeout_s, DEFAULT_TIMEOUT_S), registry=registry)

        kwargs.setdefault("fetch_at_startup", emulator_url is None)
        return cls(catalog, store, lister, providers, registry=registry, **kwargs)  # type: ignore[arg-type]

    # --- running ------------------------------------------------------------------------

    def start(self, create_task: Callable[..., asyncio.Task]) -> None:
        """Run :meth:`startup` as a task of the daemon's task group (``create_task``);
        :meth:`stop` cancels it, so a slow endpoint never holds up a shutdown."""
        self._task = create_task(self.startup())

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def startup(self) -> None:
        """Apply every kept listing now, then fetch the stale ones, all providers at once
        (unless this daemon runs on the emulator). Never raises: a failure is logged
        and changes nothing."""
        try:
            for provider in self.providers:
                kept = self._kept(provider)
                if kept is not None:
                    self._apply(kept)
            if self.fetch_at_startup:
                await asyncio.gather(*(self.refresh(p) for p in self.providers))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("model discovery failed; the catalog stays as built in")

    async def refresh(self, provider: str, *, force: bool = False) -> ProviderListing:
        """Bring one provider's listing up to date (``force``: even if the kept one is
        fresh) and apply it. Never raises but for cancellation; see ``listing()``."""
        async with self._locks.setdefault(provider, asyncio.Lock()):
            kept = self._kept(provider)
            if kept is not None and not force and self._fresh(kept):
                self._apply(kept)
                return self.listing(provider)
            try:
                models = await asyncio.wait_for(self._lister(provider), self.timeout_s)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._failed(provider, f"the {provider} models endpoint did not answer in {self.timeout_s:g}s")
            except Exception as exc:  # already a ListingError with a safe message, or our own bug
                self._failed(provider, str(exc) or type(exc).__name__)
            else:
                listing = Listing(provider=provider, fetched_at=self._clock(), models=models)
                self.store.put_model_list(provider, self._enc.encode(listing))
                self._apply(listing)
                self._state[provider].error = None
            return self.listing(provider)

    async def refresh_all(self, provider: str | None = None) -> None:
        """``models/refresh``: fetch now, one provider or every configured one. A name
        the registry does not know is INVALID_PARAMS, naming the known ones."""
        if provider is not None and provider not in self.registry:
            known = list(self.registry.names)
            raise RpcError(ErrorCode.INVALID_PARAMS, f"unknown provider {provider!r}; known: {', '.join(known)}",
                           {"path": "$.provider", "provider": provider, "known": known})
        names = [p for p in self.providers if provider in (None, p)]
        await asyncio.gather(*(self.refresh(name, force=True) for name in names))

    # --- what clients see ---------------------------------------------------------------

    def listing(self, provider: str) -> ProviderListing:
        state = self._state.setdefault(provider, _State())
        return ProviderListing(provider=provider, fetched_at=state.fetched_at, models=state.models,
                               error=state.error)

    def result(self, models: list[ModelInfo], default_model: str) -> ModelsResult:
        """``models/list``'s answer: the catalog with what discovery learned."""
        ids = {mi.id for mi in models}
        return ModelsResult(
            models=models,
            default_model=default_model,
            retires_at={k: v for k, v in self._retires_at.items() if k in ids},
            listings=[self.listing(p) for p in self.providers],
        )

    # --- inside -------------------------------------------------------------------------

    def _kept(self, provider: str) -> Listing | None:
        raw = self.store.model_list(provider)
        if raw is None:
            return None
        try:
            return self._dec.decode(raw)
        except msgspec.DecodeError:
            log.warning("the kept %s model listing could not be read; it will be fetched again", provider)
            return None

    def _fresh(self, listing: Listing) -> bool:
        return (self._clock() - listing.fetched_at).total_seconds() < self.ttl_s

    def _failed(self, provider: str, message: str) -> None:
        log.warning("model discovery: %s", message)
        self._state.setdefault(provider, _State()).error = message

    def _apply(self, listing: Listing) -> None:
        by_id = {m.id: m for m in listing.models}
        unlisted = []
        for original in self._original.values():
            if original.provider != listing.provider:
                continue
            listed = by_id.get(original.id)
            if listed is None:
                unlisted.append(original.id)
            self.catalog.update(reconcile(original, listed, configured=original.id in self.catalog.configured,
                                          registry=self.registry))
            if listed is not None and listed.retires_at is not None:
                self._retires_at[original.id] = listed.retires_at
            else:
                self._retires_at.pop(original.id, None)
        state = self._state.setdefault(listing.provider, _State())
        state.fetched_at, state.models = listing.fetched_at, len(listing.models)
        retired = [m for m in self._original if by_id.get(m) is not None and by_id[m].lifecycle == "retired"]
        if unlisted or retired:
            log.warning("model discovery: %s does not list %s%s", listing.provider, unlisted or "-",
                        f"; retired: {retired}" if retired else "")
