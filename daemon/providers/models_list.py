"""The providers' models endpoints, through their SDKs: what each one lists.

``anthropic``: ``AsyncAnthropic.models.list`` (``GET /v1/models``), asked for active,
deprecated and retired models alike (retired ones are listed only when asked), with
``max_input_tokens``, ``max_tokens``, ``capabilities.thinking``, ``.effort`` and
``.image_input``,
``lifecycle`` and ``retires_at``. ``google-genai``: ``Client.aio.models.list``
(``GET /v1beta/models``), base models, with ``input_token_limit``,
``output_token_limit`` and ``thinking``; names come as ``models/<id>``.

Which function lists which provider is the registry's word (``ProviderSpec.listing``).
The SDKs are imported when a listing is asked for, never at import. Every failure
becomes one :class:`ListingError` whose message names the provider and what went
wrong, with the API key scrubbed out; an SDK's exceptions are read by that
provider's own error mapping, the one its turns use.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import heap
from ..redact import scrub
from .anthropic import DEFAULT_BASE_URL as ANTHROPIC_BASE_URL
from .base import ListedModel, ProviderError
from .gemini import DEFAULT_BASE_URL as GEMINI_BASE_URL
from .registry import BUILTIN, Registry

PAGE_SIZE = 1000
_THINKING_TYPES = ("adaptive", "enabled", "disabled", "between_tools")


class ListingError(Exception):
    """The models endpoint could not be read; the message is safe to log and show."""


async def list_models(provider: str, api_key: str, base_url: str | None, timeout_s: float, *,
                      registry: Registry = BUILTIN) -> list[ListedModel]:
    """Every model the provider lists for this key."""
    spec = registry[provider] if provider in registry else None
    lister = spec.lister() if spec is not None else None
    if spec is None or lister is None:
        raise ListingError(f"no models endpoint is known for provider {provider!r}")
    try:
        # loading an SDK takes a second or more: in a thread, so the daemon's loop
        # (every client's requests) never waits for it
        await asyncio.to_thread(heap.load_sdk, spec.sdk)
        return await lister(api_key, base_url, timeout_s)
    except ListingError:
        raise
    except Exception as exc:  # the one boundary where SDK exceptions of the models endpoints end
        mapped = spec.error_mapper()(exc, api_key=api_key, midstream=False)
        described = _describe(mapped) if mapped is not None else f"{type(exc).__name__}: {exc}"
        raise ListingError(scrub(f"{provider} models endpoint: {described}", api_key)) from None


def _describe(error: ProviderError) -> str:
    """A mapped ``ProviderError`` as ``HTTP <status>: <message>`` (or its kind)."""
    text = f"HTTP {error.status}: " if error.status else f"{error.kind}: "
    text += error.provider_message
    return text if len(text) <= 300 else text[:297] + "..."


async def list_anthropic(api_key: str, base_url: str | None, timeout_s: float) -> list[ListedModel]:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url or ANTHROPIC_BASE_URL,
                                      timeout=timeout_s, max_retries=1)
    try:
        out = []
        async for info in client.models.list(limit=PAGE_SIZE, lifecycle=["active", "deprecated", "retired"]):
            out.append(_from_anthropic(info))
        return out
    finally:
        await client.close()


def _supported(obj: Any, *path: str) -> bool | None:
    """``obj.<path>.supported``, or None where the listing left a part out."""
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    value = getattr(obj, "supported", None)
    return value if isinstance(value, bool) else None


def _from_anthropic(info: Any) -> ListedModel:
    caps = getattr(info, "capabilities", None)
    types = None
    if caps is not None and getattr(getattr(caps, "thinking", None), "types", None) is not None:
        types = [t for t in _THINKING_TYPES if _supported(caps, "thinking", "types", t)]
    lifecycle = getattr(info, "lifecycle", None)
    return ListedModel(
        id=info.id,
        display_name=getattr(info, "display_name", None),
        max_input_tokens=getattr(info, "max_input_tokens", None),
        max_output_tokens=getattr(info, "max_tokens", None),
        thinking=_supported(caps, "thinking") if caps is not None else None,
        thinking_types=types,
        effort=_supported(caps, "effort") if caps is not None else None,
        images=_supported(caps, "image_input") if caps is not None else None,
        lifecycle=lifecycle if lifecycle in ("active", "deprecated", "retired") else "active",
        retires_at=getattr(info, "retires_at", None),
    )


async def list_gemini(api_key: str, base_url: str | None, timeout_s: float) -> list[ListedModel]:
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=api_key,
        vertexai=False,  # explicit, so GOOGLE_GENAI_USE_VERTEXAI is never read behind our back
        http_options=types.HttpOptions(base_url=base_url or GEMINI_BASE_URL, api_version="v1beta",
                                       timeout=max(1, int(timeout_s * 1000))),
    )
    try:
        out = []
        async for model in await client.aio.models.list(config={"page_size": PAGE_SIZE, "query_base": True}):
            name = model.name or ""
            out.append(ListedModel(
                id=name.removeprefix("models/"),
                display_name=model.display_name,
                max_input_tokens=model.input_token_limit,
                max_output_tokens=model.output_token_limit,
                thinking=model.thinking,
            ))
        return out
    finally:
        await client.aio.aclose()
