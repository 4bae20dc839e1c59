"""Settings: every knob resolved once, from paths, the config file and the environment.

No other module reads the environment. Components receive what they need from the
:class:`Settings` built here. API keys are wrapped in :class:`Secret`, whose repr
never shows the value, so a key cannot leak through a log line or an error message
that formats the settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import msgspec

from duologue.protocol.entities import ModelInfo
from duologue.protocol.paths import Paths, locate


class ConfigError(Exception):
    """The config file is unreadable or wrong; the message names the file and the key."""


class Secret:
    """A string that refuses to be shown."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    api_key: Secret | None = None
    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


@dataclass(frozen=True)
class Settings:
    paths: Paths
    providers: dict[str, ProviderSettings]
    extra_models: list[ModelInfo] = field(default_factory=list)
    default_model: str | None = None
    summary_model: str | None = None
    emulator: bool = False
    client_queue_bytes: int = 64 * 1024 * 1024
    turn_queue_limit: int = 32
    tcp_listen: str | None = None
    """``host:port`` of the opt-in TCP endpoint (CURVE-authenticated); None: no TCP."""

    @property
    def home(self) -> Path:
        return Path(self.paths.data_dir).parent


class _ProviderConfig(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str | None = None
    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2


class _TcpConfig(msgspec.Struct, forbid_unknown_fields=True):
    listen: str | None = None


class _ConfigFile(msgspec.Struct, forbid_unknown_fields=True):
    default_model: str | None = None
    summary_model: str | None = None
    client_queue_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
    providers: dict[str, _ProviderConfig] = {}
    models: list[ModelInfo] = []
    tcp: _TcpConfig = msgspec.field(default_factory=_TcpConfig)


_ENV_KEYS = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
_ENV_BASE_URLS = {"anthropic": "ANTHROPIC_BASE_URL", "gemini": "GEMINI_BASE_URL"}


def read_config(path: Path) -> _ConfigFile:
    if not path.exists():
        return _ConfigFile()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return msgspec.convert(raw, _ConfigFile)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(environ: dict[str, str] | None = None, *, emulator: bool = False) -> Settings:
    """Build the settings. Environment keys win over the config file's."""
    env = dict(os.environ if environ is None else environ)
    paths = locate(env)
    config = read_config(Path(paths.config_file))
    providers = {}
    for name, env_keys in _ENV_KEYS.items():
        file_cfg = config.providers.get(name, _ProviderConfig())
        key = next((env[k] for k in env_keys if env.get(k)), None) or file_cfg.api_key
        providers[name] = ProviderSettings(
            name=name,
            api_key=Secret(key) if key else None,
            base_url=env.get(_ENV_BASE_URLS[name]) or file_cfg.base_url,
            timeout_s=file_cfg.timeout_s,
            max_retries=file_cfg.max_retries,
        )
    unknown = set(config.providers) - set(_ENV_KEYS)
    if unknown:
        raise ConfigError(
            f"{paths.config_file}: unknown provider(s) {sorted(unknown)}; known: {sorted(_ENV_KEYS)}"
        )
    return Settings(
        paths=paths,
        providers=providers,
        extra_models=list(config.models),
        default_model=config.default_model,
        summary_model=config.summary_model,
        emulator=emulator or env.get("DUOLOGUE_EMULATOR") == "1",
        client_queue_bytes=config.client_queue_bytes,
        tcp_listen=_tcp_listen(config.tcp.listen, paths.config_file),
    )


def _tcp_listen(value: str | None, config_file: object) -> str | None:
    """``host:port`` checked, or None. TCP is opt-in: nothing listens unless it is set."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'{config_file}: tcp.listen must be "host:port" (e.g. "127.0.0.1:7777"), '
                          f"got {value!r}")
    return f"{host}:{int(port)}"


def ensure_private_dirs(paths: Paths) -> None:
    """Create the daemon's directories; the runtime dir (the socket's) is 0700."""
    for d in (paths.data_dir, paths.state_dir, paths.config_dir):
        Path(d).mkdir(parents=True, exist_ok=True)
    run = Path(paths.runtime_dir)
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(run, 0o700)
