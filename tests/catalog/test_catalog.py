"""The built-in catalog agrees with itself, with the SDKs' own model lists and with
what the providers document (thinking, prefill, prices)."""

from __future__ import annotations

import re
from typing import get_args

import msgspec
import pytest

from duologue.daemon.catalog import Catalog, alternatives
from duologue.protocol.entities import ModelInfo, Pricing
from duologue.protocol.errors import RpcError

CATALOG = Catalog()
EVERY = [*CATALOG.models, *CATALOG.legacy]
SHORT_NAMES_USERS_TYPE = {"sonnet", "opus", "haiku", "fable", "flash", "gem-pro", "lite"}


def literal_ids(alias: object) -> set[str]:
    """The string literals inside an SDK's ``Union[Literal[...], str]`` model alias."""
    out: set[str] = set()
    for arg in get_args(alias):
        out |= {a for a in get_args(arg) if isinstance(a, str)}
    return out


def claude_version(model_id: str) -> tuple[int, int]:
    match = re.fullmatch(r"claude-[a-z]+-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?", model_id)
    assert match, f"not a Claude model id: {model_id}"
    return int(match.group(1)), int(match.group(2) or 0)


@pytest.mark.parametrize("mi", EVERY, ids=lambda mi: mi.id)
def test_every_entry_says_whether_and_how_it_thinks(mi: ModelInfo):
    assert (mi.thinking == "none") == (mi.thinking_control == "none"), mi.id
    if mi.provider == "gemini":
        assert mi.thinking_control == "level", "every catalog Gemini model is 3.x: thinking_level"
    else:
        assert mi.thinking != "none" and mi.thinking_control in ("budget", "effort")


@pytest.mark.parametrize("mi", EVERY, ids=lambda mi: mi.id)
def test_claude_4_6_and_later_forbid_prefill_and_nothing_else_does(mi: ModelInfo):
    expected = mi.provider == "anthropic" and claude_version(mi.id) >= (4, 6)
    assert mi.forbids_prefill == expected, mi.id


def test_the_thinking_the_model_pages_document():
    by_id = {mi.id: (mi.thinking, mi.thinking_control) for mi in EVERY}
    assert by_id["claude-fable-5-2"] == ("always", "effort")
    assert by_id["claude-opus-5-5"] == ("always", "effort")
    assert by_id["claude-sonnet-5-5"] == ("default", "effort")
    assert by_id["claude-haiku-5-5"] == ("default", "effort")
    assert by_id["claude-haiku-4-5"] == ("optional", "budget")  # extended thinking
    assert by_id["gemini-3.1-pro-preview"] == ("always", "level")  # low / medium / high, never off
    assert by_id["gemini-3.8-flash"] == ("always", "level")  # "minimal" is refused


def test_every_anthropic_id_is_in_the_sdks_model_list():
    from anthropic.types.model import Model

    known = literal_ids(Model)
    missing = [mi.id for mi in EVERY if mi.provider == "anthropic" and mi.id not in known
               and mi.lifecycle != "unlisted"]
    assert not missing, f"not in anthropic's types/model.py (mark them lifecycle='unlisted'): {missing}"


def test_every_gemini_id_is_in_the_sdks_model_list():
    interactions = pytest.importorskip("google.genai._gaos.types.interactions.model")
    known = literal_ids(interactions.Model)
    missing = [mi.id for mi in EVERY if mi.provider == "gemini" and mi.id not in known]
    assert not missing, f"not in google-genai's model list: {missing}"


def test_the_newest_models_the_sdk_names_are_in_the_catalog():
    listed = {mi.id for mi in CATALOG.models}
    assert {"claude-fable-5-2", "claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-5-5"} <= listed


def test_the_short_names_users_rely_on_point_at_listed_models():
    shorts = {mi.short_name: mi for mi in CATALOG.models}
    assert SHORT_NAMES_USERS_TYPE <= set(shorts)
    assert CATALOG.resolve("haiku").id == "claude-haiku-5-5"
    assert CATALOG.resolve("fable").id == "claude-fable-5-2"
    names = [mi.short_name for mi in EVERY]
    assert len(names) == len(set(names)), "short names are unique, legacy ones included"


def test_legacy_ids_still_resolve_but_are_not_listed_or_offered():
    for old in ("claude-haiku-4-5", "claude-fable-5-1"):
        assert CATALOG.resolve(old).id == old
        assert old not in {mi.id for mi in CATALOG.models}
        assert old not in alternatives(CATALOG, "claude-opus-5-5", limit=10)
    assert CATALOG.resolve("haiku-4.5").id == "claude-haiku-4-5"
    assert CATALOG.resolve_choice("claude-fable-5-1") == "claude-fable-5-1"


def test_a_config_entry_with_a_legacy_id_lists_it_again():
    mine = msgspec.structs.replace(CATALOG.resolve("claude-haiku-4-5"), short_name="h45")
    catalog = Catalog([mine])
    assert "claude-haiku-4-5" in {mi.id for mi in catalog.models}
    assert "claude-haiku-4-5" not in {mi.id for mi in catalog.legacy}
    assert catalog.resolve("h45").id == "claude-haiku-4-5"


def test_an_unknown_name_is_an_error_naming_the_listed_ids():
    with pytest.raises(RpcError) as caught:
        CATALOG.resolve("claude-nonesuch")
    assert "claude-sonnet-5-5" in caught.value.message


def test_the_default_model_is_listed():
    assert CATALOG.default_model in {mi.id for mi in CATALOG.models}


@pytest.mark.parametrize("mi", EVERY, ids=lambda mi: mi.id)
def test_prices_are_coherent(mi: ModelInfo):
    p: Pricing = mi.pricing
    assert 0 < p.input_per_mtok < p.output_per_mtok
    if p.cache_read_per_mtok is not None:
        assert p.cache_read_per_mtok < p.input_per_mtok
    if p.cache_write_per_mtok is not None and p.cache_write_1h_per_mtok is not None:
        assert p.input_per_mtok < p.cache_write_per_mtok < p.cache_write_1h_per_mtok
    bounds = [t.above_tokens for t in p.tiers]
    assert bounds == sorted(bounds) and all(0 < b < mi.context_window for b in bounds)
    for t in p.tiers:
        assert t.input_per_mtok > p.input_per_mtok and t.output_per_mtok > p.output_per_mtok


def test_tiers_the_price_pages_list():
    pro = CATALOG.resolve("gem-pro").pricing.tiers
    assert [(t.above_tokens, t.input_per_mtok, t.output_per_mtok, t.cache_read_per_mtok) for t in pro] == [
        (200_000, 4.0, 18.0, 0.40)]
    haiku = CATALOG.resolve("haiku").pricing.tiers
    assert [(t.above_tokens, t.input_per_mtok, t.output_per_mtok) for t in haiku] == [(100_000, 0.50, 2.50)]


def test_alternatives_prefer_the_same_provider_then_the_nearest_tier_and_skip_unusable_models():
    assert alternatives(CATALOG, "claude-opus-5-5") == ["claude-fable-5-2", "claude-sonnet-5-5", "claude-haiku-5-5"]
    assert alternatives(CATALOG, CATALOG.resolve("flash"), limit=2) == ["gemini-3.5-flash-lite",
                                                                          "gemini-3.1-pro-preview"]
    retired = msgspec.structs.replace(CATALOG.resolve("claude-fable-5-2"), lifecycle="retired", available=False)
    unlisted = msgspec.structs.replace(CATALOG.resolve("claude-sonnet-5-5"), lifecycle="unlisted")
    catalog = Catalog([retired, unlisted])
    assert alternatives(catalog, "claude-opus-5-5") == ["claude-haiku-5-5", "gemini-3.1-pro-preview",
                                                        "gemini-3.8-flash"]
    assert "claude-nonesuch" not in alternatives(catalog, "claude-nonesuch", limit=20)


def test_update_replaces_an_entry_and_ignores_ids_the_catalog_does_not_hold():
    catalog = Catalog()
    catalog.update(msgspec.structs.replace(catalog.resolve("sonnet"), context_window=123))
    assert catalog.resolve("claude-sonnet-5-5").context_window == 123
    stranger = msgspec.structs.replace(catalog.resolve("sonnet"), id="claude-nonesuch", short_name="zz")
    catalog.update(stranger)
    assert catalog.find("claude-nonesuch") is None and catalog.find("zz") is None
