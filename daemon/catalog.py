"""The model catalog: built-in data (catalog.toml) plus the config file's entries.

A user's entry with an existing id replaces the built-in one; a new id is added.
Lookups accept the id or the short name, so `duologue switch SESSION flash` works.

Legacy entries (``[[legacy]]`` in catalog.toml) are the models a short name pointed
at before: they resolve by id or by their own short name, so stored sessions and
configs that name them keep working, but they are not in :attr:`Catalog.models`,
which is what ``models/list`` shows and what auto and failover choose from.

Model discovery (``discovery``) replaces entries with what the provider's models
endpoint says about them (limits, thinking support, lifecycle); :meth:`Catalog.update`
is how.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import msgspec

from duologue.protocol.entities import AUTO, ModelInfo, Tier
from duologue.protocol.errors import unknown_model

_TIER_RANK: dict[Tier, int] = {"fast": 0, "balanced": 1, "frontier": 2}


class _CatalogFile(msgspec.Struct):
    default_model: str
    models: list[ModelInfo]
    legacy: list[ModelInfo] = []


def _builtin() -> _CatalogFile:
    text = resources.files("duologue.daemon").joinpath("catalog.toml").read_text("utf-8")
    return msgspec.convert(tomllib.loads(text), _CatalogFile)


class Catalog:
    def __init__(self, extra: list[ModelInfo] = (), default_model: str | None = None):
        builtin = _builtin()
        merged = {m.id: m for m in builtin.models}
        merged.update({m.id: m for m in extra})
        self.configured = frozenset(m.id for m in extra)
        """Ids the user's config file describes: its limits are the user's word."""
        self._models = merged
        self._legacy = {m.id: m for m in builtin.legacy if m.id not in merged}
        self._index()
        self.default_model = self.resolve(default_model or builtin.default_model).id

    def _index(self) -> None:
        self._by_short = {m.short_name: m for m in self._legacy.values()}
        self._by_short.update({m.short_name: m for m in self._models.values()})

    @property
    def models(self) -> list[ModelInfo]:
        """The listed models: what clients are shown and auto and failover choose from."""
        return list(self._models.values())

    @property
    def legacy(self) -> list[ModelInfo]:
        """Models that resolve but are not listed (what short names pointed at before)."""
        return list(self._legacy.values())

    def find(self, name: str) -> ModelInfo | None:
        return self._models.get(name) or self._legacy.get(name) or self._by_short.get(name)

    def resolve(self, name: str) -> ModelInfo:
        """The model for an id or short name; RpcError(UNKNOWN_MODEL) otherwise."""
        model = self.find(name)
        if model is None:
            raise unknown_model(name, sorted(self._models))
        return model

    def resolve_choice(self, name: str) -> str:
        """An id, a short name or ``auto``, normalised to an id or ``auto``."""
        return AUTO if name == AUTO else self.resolve(name).id

    def update(self, info: ModelInfo) -> None:
        """Replace the entry with ``info.id`` (listed or legacy) by ``info``; an id the
        catalog does not hold is ignored, so discovery never adds models on its own."""
        for table in (self._models, self._legacy):
            if info.id in table:
                table[info.id] = info
                self._index()
                return


def usable(model: ModelInfo) -> bool:
    """Whether the catalog may offer this model: not retired, not unlisted by its
    provider, and not marked unavailable."""
    return model.available and model.lifecycle not in ("retired", "unlisted")


def alternatives(catalog: Catalog, model: ModelInfo | str, limit: int = 3) -> list[str]:
    """Listed models to offer instead of ``model`` (say, after its provider answered
    404): usable ones only, the same provider first, then the nearest tier, then the
    cheapest. Ids, best first; ``model`` itself is never among them."""
    failed = catalog.find(model) if isinstance(model, str) else model
    failed_id = model if isinstance(model, str) else model.id
    candidates = [mi for mi in catalog.models if mi.id != failed_id and usable(mi)]
    if failed is None:
        return [mi.id for mi in candidates[:limit]]

    def rank(mi: ModelInfo) -> tuple[bool, int, float]:
        return (mi.provider != failed.provider, abs(_TIER_RANK[mi.tier] - _TIER_RANK[failed.tier]),
                mi.pricing.input_per_mtok + mi.pricing.output_per_mtok)

    return [mi.id for mi in sorted(candidates, key=rank)[:limit]]
