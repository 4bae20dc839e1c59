"""Per-model and per-provider counters, kept in memory since the daemon started.

Latency samples are bounded (the newest ``WINDOW`` per model), so percentiles
describe recent behaviour and memory stays flat however long the daemon runs.
Cost is what the provider bills for the usage it reported, at the catalog's prices
(``pricing``): cache reads and writes and thinking are counted apart as well. A
daemon answering from the emulator bills nothing: its replies' tokens are counted,
their cost is zero and the snapshot says why (a price for a simulated reply would be
a made-up dollar figure shown as if it were spent).
"""

from __future__ import annotations

import statistics
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from duologue.protocol.entities import MessageStatus, ModelInfo, Usage
from duologue.protocol.methods import MetricsResult, ModelMetrics, Percentiles

from .pricing import Cost, breakdown, cost_usd

WINDOW = 1000
RECENT_TURNS = 50
"""How many recent replies the duration estimate learns their length from."""


def _percentiles(samples: deque[float]) -> Percentiles:
    if not samples:
        return Percentiles()
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return Percentiles(count=len(ordered), p50_ms=at(0.50), p95_ms=at(0.95))


@dataclass
class _Counters:
    provider: str
    requests: int = 0
    completed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ttft: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    thinking_tokens: int = 0
    input_cost: float = 0.0
    output_cost: float = 0.0
    cache_read_cost: float = 0.0
    cache_write_cost: float = 0.0
    switches_to: int = 0
    failovers_from: int = 0
    stream_seconds: float = 0.0
    recent_outputs: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_TURNS))

    def view(self, name: str) -> ModelMetrics:
        failed = sum(self.errors.values())
        return ModelMetrics(
            name=name,
            provider=self.provider,
            requests=self.requests,
            completed=self.completed,
            errors=dict(self.errors),
            error_rate=round(failed / self.requests, 4) if self.requests else 0.0,
            ttft=_percentiles(self.ttft),
            latency=_percentiles(self.latency),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            thinking_tokens=self.thinking_tokens,
            cost_usd=round(self.cost_usd, 6),
            input_cost_usd=round(self.input_cost, 6),
            output_cost_usd=round(self.output_cost, 6),
            cache_read_cost_usd=round(self.cache_read_cost, 6),
            cache_write_cost_usd=round(self.cache_write_cost, 6),
            switches_to=self.switches_to,
            failovers_from=self.failovers_from,
            output_tokens_per_s=round(rate, 1) if (rate := self.rate()) else None,
        )

    @property
    def cost_usd(self) -> float:
        return self.input_cost + self.output_cost + self.cache_read_cost + self.cache_write_cost

    def add_usage(self, model: ModelInfo, usage: Usage, billed: bool = True) -> None:
        cost = breakdown(model, usage) if billed else Cost()
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        self.cache_write_1h_tokens += usage.cache_write_1h_tokens
        self.thinking_tokens += usage.thinking_tokens
        self.input_cost += cost.input
        self.output_cost += cost.output
        self.cache_read_cost += cost.cache_read
        self.cache_write_cost += cost.cache_write

    def rate(self) -> float | None:
        """Output tokens a second while streaming, once there is a sample."""
        return self.output_tokens / self.stream_seconds if self.stream_seconds > 0 and self.output_tokens else None


class Metrics:
    def __init__(self, models: list[ModelInfo], *, emulator: bool = False):
        self.emulator = emulator
        """The replies come from the emulator: nothing is billed."""
        self._provider_of = {mi.id: mi.provider for mi in models}
        self._models: dict[str, _Counters] = {}
        self._providers: dict[str, _Counters] = {}
        self.since = datetime.now(timezone.utc)

    def _both(self, model_id: str, provider: str | None = None) -> tuple[_Counters, _Counters]:
        provider = provider or self._provider_of.get(model_id, "unknown")
        self._provider_of.setdefault(model_id, provider)
        mc = self._models.setdefault(model_id, _Counters(provider))
        pc = self._providers.setdefault(provider, _Counters(provider))
        return mc, pc

    def record_turn(self, model: ModelInfo, status: MessageStatus, error_kind: str | None, *,
                    ttft_ms: float | None, latency_ms: float, usage: Usage | None) -> None:
        for c in self._both(model.id, model.provider):
            c.requests += 1
            if status == "complete":
                c.completed += 1
                c.latency.append(latency_ms)
            if error_kind:
                c.errors[error_kind] += 1
            if ttft_ms is not None:
                c.ttft.append(ttft_ms)
            if usage is not None:
                c.add_usage(model, usage, billed=not self.emulator)
                if ttft_ms is not None:
                    c.stream_seconds += max(latency_ms - ttft_ms, 1.0) / 1000
                if status == "complete":
                    c.recent_outputs.append(usage.output_tokens)

    def cost_of(self, model: ModelInfo, usage: Usage) -> float | None:
        """What a reply cost as billed; None from the emulator, which bills nothing."""
        return None if self.emulator else cost_usd(model, usage)

    def record_switch(self, to_model: str) -> None:
        for c in self._both(to_model):
            c.switches_to += 1

    def record_failover(self, from_model: str, to_model: str) -> None:
        for c in self._both(from_model):
            c.failovers_from += 1

    def estimate_s(self, model_id: str) -> float | None:
        """Seconds a reply of this model may take: its typical wait for the first
        token plus its typical reply length at its measured throughput. None until
        a reply has been measured; it follows the model as more replies come in."""
        c = self._models.get(model_id)
        rate = c.rate() if c else None  # at every turn's begin: not the whole view, whose percentiles sort
        if c is None or not rate or not c.recent_outputs:
            return None
        first_token_s = statistics.median(c.ttft) / 1000 if c.ttft else 0.0
        return round(first_token_s + statistics.median(c.recent_outputs) / rate, 2)

    def snapshot(self, model_id: str | None = None) -> MetricsResult:
        models = {k: v for k, v in self._models.items() if model_id in (None, k)}
        providers = {k: v for k, v in self._providers.items()
                     if model_id is None or k == self._provider_of.get(model_id)}
        return MetricsResult(
            models=[c.view(name) for name, c in sorted(models.items())],
            providers=[c.view(name) for name, c in sorted(providers.items())],
            since=self.since,
            emulator=self.emulator,
        )
