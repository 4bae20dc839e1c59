"""The provider registry is the one place a provider is described.

Each built-in entry is complete and loads no SDK; settings, routing, discovery and the
emulator follow whatever registry they are given; and a made-up third provider
(``providers.gateway``: one adapter, one entry, one emulator module) is configured,
listed, answered, and failed over to and from by a real daemon, with nothing else
changed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import anthropic
import pytest
from conversation_support import send_and_wait
from providers.gateway import GATEWAY, REGISTRY
from support import DaemonProcess

from duologue.clients.rpc.launcher import wait_for_socket
from duologue.daemon.catalog import Catalog
from duologue.daemon.discovery import Discovery
from duologue.daemon.emulator import Emulator, Failure, Reply
from duologue.daemon.emulator.script import SPECIFIC
from duologue.daemon.providers.registry import BUILTIN, AutoRule, ProviderSpec, Registry, load
from duologue.daemon.routing import Routing
from duologue.daemon.settings import ConfigError, load_settings
from duologue.protocol.entities import Message, ModelInfo, Pricing, TextBlock
from duologue.protocol.errors import ErrorCode, RpcError

TESTS = Path(__file__).resolve().parents[1]
GATEWAY_MODEL = ModelInfo(id="gw-sonnet", provider="gateway", display_name="Sonnet via the gateway",
                          short_name="gw", context_window=200_000, max_output_tokens=64_000,
                          pricing=Pricing(input_per_mtok=3.0, output_per_mtok=15.0), tier="balanced")
MODELS_TOML = """
[[models]]
id = "gw-sonnet"
provider = "gateway"
display_name = "Sonnet via the gateway"
short_name = "gw"
context_window = 200000
max_output_tokens = 64000
pricing = { input_per_mtok = 3.0, output_per_mtok = 15.0 }
tier = "balanced"
"""


# --- the built-in entries -----------------------------------------------------------------


@pytest.mark.parametrize("spec", list(BUILTIN), ids=lambda spec: spec.name)
def test_every_builtin_entry_names_code_that_exists(spec: ProviderSpec):
    assert spec.display_name and spec.key_env and spec.base_url_env
    assert callable(load(spec.adapter).connect)
    assert callable(spec.error_mapper())
    assert spec.lister() is not None and callable(spec.lister())
    api = load(spec.emulator).API
    assert api.name == spec.name and api.key_prefix
    assert api.outcomes <= set(SPECIFIC)


def test_every_catalog_model_belongs_to_a_registered_provider():
    catalog = Catalog()
    assert {mi.provider for mi in [*catalog.models, *catalog.legacy]} == set(BUILTIN.names)


def test_every_auto_rule_prefers_a_provider():
    assert [rule for rule in get_args(AutoRule) if not BUILTIN.preferred(rule)] == []


def test_reading_every_entry_loads_no_sdk():
    probe = (
        "import sys\n"
        "from duologue.daemon.providers.registry import BUILTIN, load\n"
        "for spec in BUILTIN:\n"
        "    load(spec.adapter), spec.error_mapper(), spec.lister(), load(spec.emulator)\n"
        "sdks = [n for n in sys.modules if n.split('.')[0] == 'anthropic' or n.startswith('google.genai')]\n"
        "print(','.join(sorted(sdks)))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_a_registry_refuses_a_name_twice_or_one_that_is_not_lower_case():
    with pytest.raises(ValueError, match="twice"):
        BUILTIN.plus(dataclasses.replace(GATEWAY, name="gemini"))
    with pytest.raises(ValueError, match="lower-case"):
        Registry([dataclasses.replace(GATEWAY, name="Gateway")])


# --- the daemon's parts follow the registry they are given ---------------------------------


def _settings(home: Path, registry: Registry, config: str = "", **env: str):
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "config.toml").write_text(config)
    return load_settings({"DUOLOGUE_HOME": str(home), **env}, registry=registry)


def test_settings_read_a_new_providers_variables_table_and_defaults(home: Path):
    settings = _settings(home, REGISTRY, "[providers.gateway]\ntimeout_s = 7\n",
                         GATEWAY_API_KEY="gw-key", GATEWAY_BASE_URL="http://127.0.0.1:9/gw")
    gateway = settings.providers["gateway"]
    assert gateway.configured and gateway.base_url == "http://127.0.0.1:9/gw"
    assert (gateway.timeout_s, gateway.max_retries) == (7.0, GATEWAY.max_retries)
    assert not settings.providers["anthropic"].configured


def test_a_model_of_an_unknown_provider_is_a_config_error_naming_the_known_ones(home: Path):
    with pytest.raises(ConfigError, match="unknown provider 'gateway'; known: anthropic, gemini"):
        _settings(home, BUILTIN, MODELS_TOML)
    assert _settings(home, REGISTRY, MODELS_TOML).extra_models == [GATEWAY_MODEL]


def test_auto_prefers_the_provider_the_registry_names_for_a_rule(home: Path):
    writes_code = dataclasses.replace(GATEWAY, auto=frozenset({"code"}))
    others = [dataclasses.replace(spec, auto=spec.auto - {"code"}) for spec in BUILTIN]
    settings = _settings(home, Registry([*others, writes_code]), ANTHROPIC_API_KEY="a-key", GATEWAY_API_KEY="gw-key")
    routing = Routing(settings, Catalog([GATEWAY_MODEL]), None)
    prompt = Message(id="m1", session_id="s1", seq=1, role="user", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                     content=[TextBlock(text="why does this fail?\n```\nx = 1/0\n```")])
    assert routing.choose_auto(prompt, "claude-sonnet-5-5").model.id == "gw-sonnet"


async def test_models_refresh_refuses_a_provider_the_registry_does_not_know(home: Path):
    discovery = Discovery(Catalog(), store=None, lister=None, providers=[], registry=REGISTRY)  # type: ignore[arg-type]
    with pytest.raises(RpcError) as refused:
        await discovery.refresh_all("nobody")
    assert refused.value.code == ErrorCode.INVALID_PARAMS
    assert refused.value.data["known"] == ["anthropic", "gemini", "gateway"]


async def test_one_emulator_tells_two_providers_of_one_wire_format_apart_by_their_keys():
    with Emulator(registry=REGISTRY) as emu:
        emu.script("gateway", Reply(text="from gateway"))
        emu.script("anthropic", Reply(text="from anthropic"))
        for provider in ("gateway", "anthropic"):
            client = anthropic.AsyncAnthropic(api_key=emu.api_keys[provider], base_url=emu.url, max_retries=0)
            reply = await client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                                 messages=[{"role": "user", "content": "hi"}])
            await client.close()
            assert reply.content[0].text == f"from {provider}"
        assert [r.provider for r in emu.received] == ["gateway", "anthropic"]
        assert emu.api_keys["gateway"].startswith("gw-emu-")


# --- a real daemon with a third provider ----------------------------------------------------


class GatewayDaemon(DaemonProcess):
    """A daemon started from ``providers.gateway.main``: the built-in providers and the gateway."""

    def start(self) -> GatewayDaemon:
        code = "from providers.gateway import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.paths = wait_for_socket(self.paths, self.proc, 20.0)
        return self


def gateway_daemon(home: Path, emu: Emulator) -> GatewayDaemon:
    """Anthropic and the gateway configured against ``emu``; Gemini has no key, so each
    fails over to the other."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(
        "[providers.anthropic]\nmax_retries = 0\ntimeout_s = 3\n"
        "[providers.gateway]\nmax_retries = 0\ntimeout_s = 3\n" + MODELS_TOML)
    env = {"ANTHROPIC_API_KEY": emu.api_keys["anthropic"], "ANTHROPIC_BASE_URL": emu.url,
           "GATEWAY_API_KEY": emu.api_keys["gateway"], "GATEWAY_BASE_URL": emu.url,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return GatewayDaemon(home, emulator=False, env=env)


async def test_a_third_provider_is_listed_answers_and_is_failed_over_to_and_from(home: Path):
    with Emulator(registry=REGISTRY) as emu:
        emu.models.alias("gw-sonnet", like="claude-sonnet-4-6")
        d = gateway_daemon(home, emu).start()
        try:
            async with d.client("registry") as c:
                providers = {p.name: p for p in (await c.status()).providers}
                catalog = {mi.id: mi for mi in (await c.list_models()).models}
                s = await c.create_session(model="gw")
                await c.attach(s.id, since_seq=s.last_seq)
                await send_and_wait(c, s.id, "hello, gateway")
                emu.script("gateway", Failure(status=529))
                emu.script("anthropic", Reply(text="anthropic took over"))
                await send_and_wait(c, s.id, "the gateway is overloaded now")
                await c.switch_model(s.id, "sonnet")
                emu.script("anthropic", Failure(status=529))
                emu.script("gateway", Reply(text="the gateway took over"))
                await send_and_wait(c, s.id, "and now anthropic is")
                got = await c.get_session(s.id)
        finally:
            d.stop()

    gateway = providers["gateway"]
    assert gateway.configured and gateway.display_name == "Example Gateway" and gateway.key_env == ["GATEWAY_API_KEY"]
    assert catalog["gw-sonnet"].provider == "gateway" and catalog["gw-sonnet"].available
    replies = [msg for msg in got.messages if msg.role == "assistant"]
    assert [r.status for r in replies] == ["complete", "failed", "complete", "failed", "complete"]
    first, _, took_over, _, back = replies
    assert first.model == "gw-sonnet" and first.text.startswith("[emulator gw-sonnet]")
    assert catalog[took_over.model].provider == "anthropic" and took_over.text == "anthropic took over"
    assert back.model == "gw-sonnet" and back.text == "the gateway took over"
    failovers = [(sw.from_model, sw.to_model) for sw in got.switches if sw.kind == "failover"]
    assert failovers == [("gw-sonnet", took_over.model), ("claude-sonnet-5-5", "gw-sonnet")]
    turns = [r.provider for r in emu.received if r.path.endswith("/messages")]
    assert turns == ["gateway", "gateway", "anthropic", "anthropic", "gateway"]
