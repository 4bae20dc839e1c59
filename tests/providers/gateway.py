"""A made-up third provider, added the way daemon/providers/registry.py says to add one.

"gateway" stands for a service that speaks the Anthropic Messages API under its own
name, key and base URL (a proxy, a hosted gateway). Adding it takes what a real third
provider takes, all of it here and nothing anywhere else in the repository:

- the adapter: the Anthropic adapter under another name (a real provider with its own
  wire format would have its own module, with its own error mapping);
- the registry entry :data:`GATEWAY`;
- the emulator module: this module's ``API``, the emulator's Messages API under the
  gateway's name and keys.

:func:`main` runs a real daemon that knows it (importable as ``providers.gateway``:
pytest puts tests/ on the path, and the tests hand the daemon the same path).
"""

from __future__ import annotations

import os
import sys

from duologue.daemon.emulator.anthropic_api import AnthropicApi
from duologue.daemon.providers.anthropic import AnthropicProvider
from duologue.daemon.providers.registry import BUILTIN, ProviderSpec


class GatewayProvider(AnthropicProvider):
    name = "gateway"


GATEWAY = ProviderSpec(
    name="gateway",
    display_name="Example Gateway",
    key_env=("GATEWAY_API_KEY",),
    base_url_env="GATEWAY_BASE_URL",
    adapter="providers.gateway:GatewayProvider",
    map_error="duologue.daemon.providers.anthropic:map_anthropic_error",
    sdk="anthropic",
    emulator="providers.gateway",
    listed_thinking="budget",
)

REGISTRY = BUILTIN.plus(GATEWAY)

API = AnthropicApi(name="gateway", key_prefix="gw-emu-")


def main() -> None:
    """What ``python -m duologue.daemon`` does, for a registry that knows the gateway."""
    from duologue.daemon.home import UMASK
    from duologue.daemon.server import run_daemon
    from duologue.daemon.settings import load_settings

    os.umask(UMASK)
    sys.exit(run_daemon(load_settings(registry=REGISTRY), emulator=False))
