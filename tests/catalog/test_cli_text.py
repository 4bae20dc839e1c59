"""What `duologue models` and `duologue stats` print: lifecycle marks and dollars by kind."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from duologue.clients.cli import models_text, stats_text
from duologue.daemon.catalog import Catalog
from duologue.protocol import methods as m

NOW = datetime(2026, 12, 1, 22, 0, tzinfo=timezone.utc)


def test_models_marks_retired_retiring_unlisted_and_unavailable_models_and_explains_them():
    catalog = Catalog()
    states = {"claude-opus-5-5": dict(lifecycle="deprecated"), "gemini-3.8-flash": dict(lifecycle="unlisted"),
              "claude-fable-5-2": dict(lifecycle="retired", available=False),
              "gemini-3.5-flash-lite": dict(available=False)}
    models = [msgspec.structs.replace(mi, **states.get(mi.id, {})) for mi in catalog.models]
    r = m.ModelsResult(models=models, default_model=catalog.default_model,
                       retires_at={"claude-opus-5-5": datetime(2027, 9, 22, tzinfo=timezone.utc)},
                       listings=[m.ProviderListing(provider="anthropic", fetched_at=NOW, models=25),
                                 m.ProviderListing(provider="gemini", error="gemini models endpoint: HTTP 403")])
    text = models_text(r)
    row = {line.split()[1]: line for line in text.splitlines()[1:8]}
    assert row["claude-opus-5-5"].endswith("retiring")
    assert row["gemini-3.8-flash"].endswith("unlisted")
    assert row["claude-fable-5-2"].endswith("retired")
    assert row["gemini-3.5-flash-lite"].endswith("unavailable")
    assert row["claude-sonnet-5-5"].endswith("*")
    assert "claude-opus-5-5: deprecated: its provider retires it on 2027-09-22" in text
    assert "claude-fable-5-2: retired by its provider" in text
    assert "gemini-3.1-pro-preview: above 200,000 prompt tokens 4/18" in text
    assert "anthropic: listed 25 models at 2026-12-01 22:00 UTC" in text
    assert "gemini: never listed; last attempt failed: gemini models endpoint: HTTP 403" in text


def test_stats_shows_dollars_per_model_with_cache_reads_writes_and_thinking():
    x = m.ModelMetrics(name="claude-sonnet-5-5", provider="anthropic", requests=2, completed=2,
                       input_tokens=2_000, output_tokens=4_000, thinking_tokens=1_000, cache_read_tokens=200_000,
                       cache_write_tokens=40_000, cache_write_1h_tokens=20_000, cost_usd=0.264,
                       input_cost_usd=0.004, output_cost_usd=0.04, cache_read_cost_usd=0.04,
                       cache_write_cost_usd=0.18)
    text = stats_text(m.MetricsResult(models=[x], providers=[msgspec.structs.replace(x, name="anthropic")],
                                      since=NOW))
    lines = text.splitlines()
    assert "CACHE R/W" in lines[0] and "200000/60000" in lines[1] and "0.2640" in lines[1]
    assert lines[2].strip() == ("$0.2640 = input $0.0040 + output $0.0400 (1,000 thinking tok) + cache read "
                                "$0.0400 (200,000 tok) + cache write $0.1800 (60,000 tok, 20,000 of them 1h)")
    assert lines[3].startswith("anthropic")
    assert stats_text(m.MetricsResult(models=[], providers=[], since=NOW)) == "no turns yet"
