"""The provider APIs one emulator serves, and which of them a request is for.

Each provider's emulator module (``ProviderSpec.emulator`` in the registry) holds a
module-level ``API`` with the members of :class:`ProviderApi`: its routes, how its
key arrives and how it refuses a wrong one, its error shape, and how it answers. The
server knows nothing else of a provider, so a provider is added to the emulator by
writing its module and naming it in the registry.

Which API answers: those whose routes hold the path; among them (or among all, when
none does) the one whose own key the request carries, else the first that finds a
credential where it expects one, else the first. So ``GET /v1/models`` goes to
whichever provider's key it presents, two providers may speak one wire format on one
emulator (told apart by their keys), and a request with no key is refused by the API
its path belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..providers.registry import BUILTIN, Registry, load
from .access import key_matches
from .caching import PromptCache
from .failures import StreamShape
from .models import ModelTable
from .script import Failure, ReceivedRequest, Step
from .signing import Signer

Query = dict[str, list[str]]


class Exchange(Protocol):
    """What the server lends an API to answer one request with."""

    models: ModelTable
    cache: PromptCache
    signer: Signer

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None: ...

    def send_failure(self, step: Failure, body: dict[str, Any]) -> None:
        """A scripted error: its own body when it has one, else ``body``."""

    def send_shaped(self, plan: StreamShape, delay: float, keepalive: bytes) -> None:
        """A stream as a scripted failure shaped it; ``keepalive`` repeats while it idles."""

    def take_step(self, request: ReceivedRequest) -> tuple[Step | None, bool]:
        """Record ``request`` and take its provider's next scripted step; True when
        the emulator is stopping and nothing should be sent."""

    def decode(self, raw: bytes) -> dict[str, Any] | None:
        """The body as a JSON object, or None."""


class ProviderApi(Protocol):
    """One provider's HTTP API, as the emulator plays it."""

    name: str
    """The registry's name for the provider (``emu.script(name, ...)``)."""
    key_prefix: str
    """What the keys an emulator makes for it start with (it tells a reader whose key it is)."""
    outcomes: frozenset[str]
    """The provider-specific fields of a scripted step (``script.SPECIFIC``) it can say."""

    def routes(self, method: str, path: str) -> bool:
        """Whether ``path`` is one of this API's."""

    def presented_key(self, headers: Any, query: Query) -> str | None:
        """The credential the request carries where this API expects one, if any."""

    def refusal(self, headers: Any, query: Query, key: str) -> tuple[int, dict[str, Any]] | None:
        """This API's answer to a request without ``key`` (status, body); None: let it in."""

    def error_body(self, status: int, message: str) -> dict[str, Any]: ...

    def get(self, exchange: Exchange, path: str, query: Query) -> None: ...

    def post(self, exchange: Exchange, path: str, query: Query, raw: bytes) -> None: ...


def load_apis(registry: Registry = BUILTIN) -> tuple[ProviderApi, ...]:
    """The emulator API of each provider of ``registry``, in its order."""
    apis = []
    for spec in registry:
        api: ProviderApi = load(spec.emulator).API
        if api.name != spec.name:
            raise ValueError(f"{spec.emulator} plays {api.name!r}, but the registry names it for {spec.name!r}")
        apis.append(api)
    return tuple(apis)


def api_for(apis: Iterable[ProviderApi], method: str, path: str, headers: Any, query: Query,
            keys: Mapping[str, str]) -> ProviderApi:
    """The API that answers this request (see the module docstring); ``keys`` are the
    ones this emulator accepts, by provider."""
    every = list(apis)
    candidates = [api for api in every if api.routes(method, path)] or every
    presented = [(api, key) for api in candidates if (key := api.presented_key(headers, query))]
    owner = next((api for api, key in presented if key_matches(key, keys[api.name])), None)
    return owner or (presented[0][0] if presented else candidates[0])


def outcomes_by_name(apis: Iterable[ProviderApi]) -> Mapping[str, frozenset[str]]:
    return {api.name: api.outcomes for api in apis}
