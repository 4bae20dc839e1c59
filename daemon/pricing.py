"""What a reply cost, as the provider bills it.

Both providers bill per million tokens of each kind: uncached input, output (thinking
included: Claude counts it in ``output_tokens``, Gemini's ``thoughtsTokenCount`` is
added to the candidates), cache reads (Claude ``cache_read_input_tokens``, Gemini
``cachedContentTokenCount``) and, for Claude, cache writes apart by lifetime (5 minutes
or 1 hour). A catalog entry gives the prices; a cache price it leaves out is derived
from the input price the way Anthropic bills it (reads 0.1x, 5-minute writes 1.25x,
1-hour writes 2x). Gemini's cached-content price is also a tenth of input on every
current model, and Gemini reports no cache writes (implicit caching has none; explicit
``cachedContents`` bill storage by the hour, which no reply's usage carries).

Tiers: a request whose whole prompt (``Usage.prompt_tokens``: uncached, cached and
written alike) is above a tier's ``above_tokens`` is billed at that tier's prices for
every token of the request, input and output alike (Gemini 3.1 Pro above 200k tokens,
Claude Haiku 5.5 above 100k). A tier that gives no cache price scales the base entry's
cache-to-input ratio onto its own input price.
"""

from __future__ import annotations

from dataclasses import dataclass

from duologue.protocol.entities import ModelInfo, Pricing, Usage

CACHE_READ_FACTOR = 0.1
CACHE_WRITE_FACTOR = 1.25
CACHE_WRITE_1H_FACTOR = 2.0
_MTOK = 1_000_000


@dataclass(frozen=True)
class Rates:
    """Dollars per million tokens of each kind, for one request (its tier chosen)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float


@dataclass(frozen=True)
class Cost:
    """One request's bill in dollars, by what was billed. ``thinking`` is the share of
    ``output`` that paid for thinking (already in ``output``, not added to ``total``)."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    thinking: float = 0.0

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_read + self.cache_write


def rates(pricing: Pricing, prompt_tokens: int) -> Rates:
    """The prices that apply to a request with this many prompt tokens."""
    base_in = pricing.input_per_mtok
    read_ratio = _ratio(pricing.cache_read_per_mtok, base_in, CACHE_READ_FACTOR)
    write_ratio = _ratio(pricing.cache_write_per_mtok, base_in, CACHE_WRITE_FACTOR)
    write_1h_ratio = _ratio(pricing.cache_write_1h_per_mtok, base_in, CACHE_WRITE_1H_FACTOR)
    tier = max((t for t in pricing.tiers if prompt_tokens > t.above_tokens),
               key=lambda t: t.above_tokens, default=None)
    if tier is None:
        return Rates(
            input=base_in,
            output=pricing.output_per_mtok,
            cache_read=_given(pricing.cache_read_per_mtok, base_in * read_ratio),
            cache_write=_given(pricing.cache_write_per_mtok, base_in * write_ratio),
            cache_write_1h=_given(pricing.cache_write_1h_per_mtok, base_in * write_1h_ratio),
        )
    return Rates(
        input=tier.input_per_mtok,
        output=tier.output_per_mtok,
        cache_read=_given(tier.cache_read_per_mtok, tier.input_per_mtok * read_ratio),
        cache_write=tier.input_per_mtok * write_ratio,
        cache_write_1h=tier.input_per_mtok * write_1h_ratio,
    )


def breakdown(model: ModelInfo, usage: Usage) -> Cost:
    """The request's bill by kind of token, at its tier's prices."""
    r = rates(model.pricing, usage.prompt_tokens)
    return Cost(
        input=usage.input_tokens * r.input / _MTOK,
        output=usage.output_tokens * r.output / _MTOK,
        cache_read=usage.cache_read_tokens * r.cache_read / _MTOK,
        cache_write=(usage.cache_write_tokens * r.cache_write
                     + usage.cache_write_1h_tokens * r.cache_write_1h) / _MTOK,
        thinking=usage.thinking_tokens * r.output / _MTOK,
    )


def cost_usd(model: ModelInfo, usage: Usage) -> float:
    """What one request cost in US dollars, as billed."""
    return breakdown(model, usage).total


def _ratio(explicit: float | None, base_input: float, default: float) -> float:
    if explicit is None or base_input <= 0:
        return default
    return explicit / base_input


def _given(explicit: float | None, derived: float) -> float:
    return derived if explicit is None else explicit
