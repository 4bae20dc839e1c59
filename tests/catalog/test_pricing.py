"""Cost as billed, against figures worked out by hand from the providers' price pages.

Each case states the arithmetic: tokens x dollars per million / 1,000,000.
"""

from __future__ import annotations

import pytest

from duologue.daemon.catalog import Catalog
from duologue.daemon.metrics import Metrics
from duologue.daemon.pricing import breakdown, cost_usd, rates
from duologue.protocol.entities import ModelInfo, Pricing, PriceTier, Usage

CATALOG = Catalog()


def model(id_: str) -> ModelInfo:
    return CATALOG.resolve(id_)


def custom(pricing: Pricing, provider: str = "anthropic") -> ModelInfo:
    return ModelInfo(id="custom", provider=provider, display_name="Custom", short_name="custom",
                     context_window=200_000, max_output_tokens=8_000, pricing=pricing, tier="fast")


def test_claude_bills_input_output_cache_reads_and_both_cache_writes_apart():
    # Sonnet 5.5: $2 in, $10 out, $0.20 cache read, $2.50 5-minute write, $4 1-hour write.
    usage = Usage(input_tokens=1_000, output_tokens=2_000, thinking_tokens=500, cache_read_tokens=100_000,
                  cache_write_tokens=20_000, cache_write_1h_tokens=10_000)
    cost = breakdown(model("claude-sonnet-5-5"), usage)
    assert cost.input == pytest.approx(1_000 * 2 / 1e6)            # 0.002
    assert cost.output == pytest.approx(2_000 * 10 / 1e6)          # 0.02, thinking included
    assert cost.cache_read == pytest.approx(100_000 * 0.20 / 1e6)  # 0.02
    assert cost.cache_write == pytest.approx(20_000 * 2.50 / 1e6 + 10_000 * 4 / 1e6)  # 0.05 + 0.04
    assert cost.thinking == pytest.approx(500 * 10 / 1e6)          # a share of output, not extra
    assert cost_usd(model("claude-sonnet-5-5"), usage) == pytest.approx(0.132)


def test_cache_prices_default_from_the_input_price_as_anthropic_bills_them():
    # $3 input: reads 0.1x = $0.30, 5-minute writes 1.25x = $3.75, 1-hour writes 2x = $6.
    m = custom(Pricing(input_per_mtok=3.0, output_per_mtok=15.0))
    usage = Usage(input_tokens=1_000, output_tokens=1_000, cache_read_tokens=10_000,
                  cache_write_tokens=10_000, cache_write_1h_tokens=10_000)
    # 0.003 + 0.015 + 0.003 + 0.0375 + 0.06
    assert cost_usd(m, usage) == pytest.approx(0.1185)


def test_explicit_cache_prices_win_over_the_defaults():
    # Fable 5.2 reads its cache at $0.20 (0.025x of $8), not 0.1x.
    assert cost_usd(model("claude-fable-5-2"), Usage(cache_read_tokens=1_000_000)) == pytest.approx(0.20)
    # Opus 5.5: $0.20 read (0.05x), $5 and $8 writes.
    r = rates(model("claude-opus-5-5").pricing, 0)
    assert (r.cache_read, r.cache_write, r.cache_write_1h) == (0.20, 5.0, 8.0)


def test_gemini_bills_prompt_candidates_with_thoughts_and_cached_content():
    # Gemini 3.8 Flash: $0.75 in, $3.75 out (thoughts included), $0.075 cached.
    usage = Usage(input_tokens=10_000, output_tokens=9_000, thinking_tokens=8_000, cache_read_tokens=40_000)
    # 10k x 0.75 = 0.0075; 9k x 3.75 = 0.03375; 40k x 0.075 = 0.003
    assert cost_usd(model("gemini-3.8-flash"), usage) == pytest.approx(0.04425)


def test_gemini_pro_bills_the_whole_request_higher_once_the_prompt_is_above_200k():
    pro = model("gemini-3.1-pro-preview")
    at_limit = Usage(input_tokens=150_000, cache_read_tokens=50_000, output_tokens=10_000, thinking_tokens=8_000)
    # 200,000 prompt tokens is not above 200k: 150k x $2 + 50k x $0.20 + 10k x $12 = 0.3 + 0.01 + 0.12
    assert cost_usd(pro, at_limit) == pytest.approx(0.43)
    above = Usage(input_tokens=150_001, cache_read_tokens=50_000, output_tokens=10_000, thinking_tokens=8_000)
    # 200,001: 150,001 x $4 + 50k x $0.40 + 10k x $18 = 0.600004 + 0.02 + 0.18
    assert cost_usd(pro, above) == pytest.approx(0.800004)


def test_the_tier_counts_cached_and_written_prompt_tokens_and_scales_cache_writes():
    haiku = model("claude-haiku-5-5")
    # 50k uncached + 60k written = 110k prompt tokens, above 100k: $0.50 in, $2.50 out, writes 1.25 x 0.50.
    above = Usage(input_tokens=50_000, cache_write_tokens=60_000, output_tokens=1_000)
    assert cost_usd(haiku, above) == pytest.approx(50_000 * 0.50 / 1e6 + 60_000 * 0.625 / 1e6 + 1_000 * 2.50 / 1e6)
    # 90k: the base prices, $0.10 in, $0.125 write, $0.50 out.
    below = Usage(input_tokens=40_000, cache_write_tokens=50_000, output_tokens=1_000)
    assert cost_usd(haiku, below) == pytest.approx(0.004 + 0.00625 + 0.0005)


def test_a_tier_without_a_cache_price_keeps_the_base_ratio_and_the_highest_tier_applies():
    pricing = Pricing(input_per_mtok=1.0, output_per_mtok=4.0, cache_read_per_mtok=0.05,
                      tiers=[PriceTier(above_tokens=100, input_per_mtok=2.0, output_per_mtok=8.0),
                             PriceTier(above_tokens=1_000, input_per_mtok=3.0, output_per_mtok=9.0)])
    assert rates(pricing, 100).input == 1.0
    assert rates(pricing, 101).cache_read == pytest.approx(2.0 * 0.05)
    r = rates(pricing, 5_000)
    assert (r.input, r.output, r.cache_read) == (3.0, 9.0, pytest.approx(0.15))
    assert r.cache_write == pytest.approx(3.0 * 1.25) and r.cache_write_1h == pytest.approx(6.0)


def test_no_usage_costs_nothing():
    assert cost_usd(model("claude-opus-5-5"), Usage()) == 0.0


def test_metrics_count_cache_and_thinking_tokens_and_split_the_dollars_per_model_and_provider():
    metrics = Metrics(CATALOG.models)
    sonnet, flash = model("claude-sonnet-5-5"), model("gemini-3.8-flash")
    turn = Usage(input_tokens=1_000, output_tokens=2_000, thinking_tokens=500, cache_read_tokens=100_000,
                 cache_write_tokens=20_000, cache_write_1h_tokens=10_000)
    for _ in range(2):
        metrics.record_turn(sonnet, "complete", None, ttft_ms=100.0, latency_ms=900.0, usage=turn)
    metrics.record_turn(flash, "failed", "server", ttft_ms=None, latency_ms=50.0,
                        usage=Usage(input_tokens=10_000, output_tokens=9_000, thinking_tokens=8_000))
    snap = metrics.snapshot()
    s = next(x for x in snap.models if x.name == "claude-sonnet-5-5")
    assert (s.input_tokens, s.output_tokens, s.thinking_tokens) == (2_000, 4_000, 1_000)
    assert (s.cache_read_tokens, s.cache_write_tokens, s.cache_write_1h_tokens) == (200_000, 40_000, 20_000)
    assert s.cost_usd == pytest.approx(2 * 0.132)
    assert (s.input_cost_usd, s.output_cost_usd) == (pytest.approx(0.004), pytest.approx(0.04))
    assert (s.cache_read_cost_usd, s.cache_write_cost_usd) == (pytest.approx(0.04), pytest.approx(0.18))
    providers = {x.name: x for x in snap.providers}
    assert providers["anthropic"].cost_usd == pytest.approx(0.264)
    assert providers["gemini"].cost_usd == pytest.approx(0.0075 + 0.03375)
    assert providers["gemini"].thinking_tokens == 8_000


def test_metrics_attribute_a_model_outside_the_catalog_to_its_own_provider():
    metrics = Metrics([])
    metrics.record_turn(model("claude-haiku-4-5"), "complete", None, ttft_ms=10.0, latency_ms=20.0,
                        usage=Usage(input_tokens=1_000_000))
    assert [x.name for x in metrics.snapshot().providers] == ["anthropic"]
    assert metrics.snapshot().models[0].cost_usd == pytest.approx(1.0)
