"""The model catalog: built-in data (catalog.toml) plus the config file's entries.

A user's entry with an existing id replaces the built-in one; a new id is added.
Lookups accept the id or the short name, so `duologue switch SESSION flash` works.
"""

from __future__ import annotations

import tomllib
from importlib import resources

import msgspec

from duologue.protocol.entities import AUTO, ModelInfo
from duologue.protocol.errors import unknown_model


class _CatalogFile(msgspec.Struct):
    default_model: str
    models: list[ModelInfo]


def _builtin() -> _CatalogFile:
    text = resources.files("duologue.daemon").joinpath("catalog.toml").read_text("utf-8")
    return msgspec.convert(tomllib.loads(text), _CatalogFile)


class Catalog:
    def __init__(self, extra: list[ModelInfo] = (), default_model: str | None = None):
        builtin = _builtin()
        merged = {m.id: m for m in builtin.models}
        merged.update({m.id: m for m in extra})
        self._models = merged
        self._by_short = {m.short_name: m for m in merged.values()}
        self.default_model = self.resolve(default_model or builtin.default_model).id

    @property
    def models(self) -> list[ModelInfo]:
        return list(self._models.values())

    def find(self, name: str) -> ModelInfo | None:
        return self._models.get(name) or self._by_short.get(name)

    def resolve(self, name: str) -> ModelInfo:
        """The model for an id or short name; RpcError(UNKNOWN_MODEL) otherwise."""
        model = self.find(name)
        if model is None:
            raise unknown_model(name, sorted(self._models))
        return model

    def resolve_choice(self, name: str) -> str:
        """An id, a short name or ``auto``, normalised to an id or ``auto``."""
        return AUTO if name == AUTO else self.resolve(name).id
