"""Settings: every knob resolved once, from paths, the config file and the environment.

No other module reads the environment. Components receive what they need from the
:class:`Settings` built here. Which providers there are, and which variables and
config tables configure each, is the registry's word (``providers.registry``); the
settings carry that registry on, so every component asks the same one. API keys are
wrapped in :class:`Secret`, whose repr never shows the value, so a key cannot leak
through a log line or an error message that formats the settings.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import msgspec

from duologue.protocol.entities import ModelInfo
from duologue.protocol.paths import Paths, locate

from .providers.base import Connection
from .providers.registry import BUILTIN, ProviderSpec, Registry


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

    def connection(self) -> Connection:
        """What the provider's adapter (and its models listing) is built from."""
        return Connection(api_key=self.api_key.reveal() if self.api_key else "", base_url=self.base_url,
                          timeout_s=self.timeout_s, max_retries=self.max_retries)


@dataclass(frozen=True)
class SyncSettings:
    """``[sync]``: where this daemon replicates its sessions (docs/sync.md). Absent,
    nothing leaves the machine. At most one kind of credential is set."""

    url: str
    device_name: str
    user: str | None = None
    password: Secret | None = None
    creds_file: str | None = None
    nkey_file: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    connect_timeout_s: float = 5.0
    lease_ttl_s: float = 30.0

    @property
    def server(self) -> str:
        """The url without any user:password written into it (for status and logs)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


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
    turn_timeout_s: float = 600.0
    """A turn's hard deadline, over every attempt and tool round (the read timeout
    alone never ends a stream that only sends keepalives)."""
    tcp_listen: str | None = None
    """``host:port`` of the opt-in TCP endpoint (CURVE-authenticated); None: no TCP."""
    registry: Registry = BUILTIN
    """The providers; ``providers`` holds one entry for each."""
    sync: SyncSettings | None = None
    """Replication through NATS JetStream; None (the default): nothing leaves the machine."""

    def on_emulator(self, url: str, api_keys: Mapping[str, str]) -> Settings:
        """These settings with every provider pointed at the emulator at ``url`` and
        holding the key it made for this start, the only one it accepts. The keys
        configured for the real providers are dropped, so none reaches the emulator."""
        providers = {name: dataclasses.replace(cfg, api_key=Secret(api_keys[name]), base_url=url)
                     for name, cfg in self.providers.items()}
        return dataclasses.replace(self, providers=providers, emulator=True)


class _ProviderConfig(msgspec.Struct, forbid_unknown_fields=True):
    """A ``[providers.<name>]`` table; what it leaves out comes from the registry."""

    api_key: str | None = None
    base_url: str | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None


class _TcpConfig(msgspec.Struct, forbid_unknown_fields=True):
    listen: str | None = None


class _SyncTls(msgspec.Struct, forbid_unknown_fields=True):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class _SyncConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    device_name: str | None = None
    user: str | None = None
    password: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls: _SyncTls = msgspec.field(default_factory=_SyncTls)
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    lease_ttl_s: Annotated[float, msgspec.Meta(ge=2, le=600)] = 30.0


class _ConfigFile(msgspec.Struct, forbid_unknown_fields=True):
    default_model: str | None = None
    summary_model: str | None = None
    client_queue_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
    turn_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 600.0
    providers: dict[str, _ProviderConfig] = {}
    models: list[ModelInfo] = []
    tcp: _TcpConfig = msgspec.field(default_factory=_TcpConfig)
    sync: _SyncConfig | None = None


def read_config(path: Path) -> _ConfigFile:
    """The config file, checked; a :class:`ConfigError` names the file, the line and
    the key of the first problem."""
    if not path.exists():
        return _ConfigFile()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, _ConfigFile)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$")
        if not message:
            raise ConfigError(f"{path}: {exc}") from None
        key = where.rstrip("`").lstrip(".")
        if key.startswith("providers[...]"):  # msgspec does not name a dict's key: find it
            for name, table in (raw.get("providers") or {}).items():
                try:
                    msgspec.convert(table, _ProviderConfig)
                except msgspec.ValidationError:
                    key = f"providers.{name}" + key.removeprefix("providers[...]")
                    break
        raise ConfigError(f"{_where(path, key, text)}: {message}") from None


def _where(path: Path, key: str, text: str | None = None) -> str:
    """``<file> line <n>: <key>``, for a message about that key."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    line = _line_of(text, key)
    return f"{path}{f' line {line}' if line else ''}: {key}"


def _line_of(text: str, key: str) -> int | None:
    """The line that sets ``key`` (dotted, as ``providers.anthropic.timeout_s``), or the
    header of its table; None when it cannot be told (arrays of tables)."""
    want = key.split(".")
    table: list[str] = []
    header_line = None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            table = [p.strip().strip('"\'') for p in stripped.strip("[]").split(".")]
            if table == want[:len(table)] and header_line is None:
                header_line = n
            continue
        if "=" not in stripped:
            continue
        name = [p.strip().strip('"\'') for p in stripped.split("=", 1)[0].split(".")]
        full = table + name
        if full == want or (len(full) < len(want) and full == want[:len(full)]
                            and stripped.split("=", 1)[1].strip().startswith("{")):
            return n
    return header_line


def _check_base_url(value: str | None, where: str) -> str | None:
    """A base URL the SDKs can use (http or https, a host, a valid port), or None."""
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(f"{where}: not a usable base URL: {value!r}; write it as "
                          "http(s)://host[:port][/path], e.g. \"https://proxy.example.com:8443/v1\"")
    return value


def load_settings(environ: dict[str, str] | None = None, *, emulator: bool = False,
                  registry: Registry = BUILTIN) -> Settings:
    """Build the settings for ``registry``'s providers. Environment keys win over the
    config file's."""
    env = dict(os.environ if environ is None else environ)
    paths = locate(env)
    config = read_config(Path(paths.config_file))
    unknown = set(config.providers) - set(registry.names)
    if unknown:
        raise ConfigError(
            f"{paths.config_file}: unknown provider(s) {sorted(unknown)}; known: {list(registry.names)}"
        )
    providers = {spec.name: _provider(spec, config.providers.get(spec.name, _ProviderConfig()), env,
                                      Path(paths.config_file))
                 for spec in registry}
    _check_models(config, Path(paths.config_file), registry)
    return Settings(
        paths=paths,
        providers=providers,
        extra_models=list(config.models),
        default_model=config.default_model,
        summary_model=config.summary_model,
        emulator=emulator or env.get("DUOLOGUE_EMULATOR") == "1",
        client_queue_bytes=config.client_queue_bytes,
        turn_timeout_s=config.turn_timeout_s,
        tcp_listen=_tcp_listen(config.tcp.listen, paths.config_file),
        registry=registry,
        sync=None if config.sync is None else _sync(config.sync, Path(paths.config_file)),
    )


def _provider(spec: ProviderSpec, table: _ProviderConfig, env: Mapping[str, str], path: Path) -> ProviderSettings:
    """One provider's settings: its variables first, then its config table, then the
    registry's defaults."""
    key = next((env[k] for k in spec.key_env if env.get(k)), None) or table.api_key
    if env.get(spec.base_url_env):
        base_url = _check_base_url(env[spec.base_url_env], f"${spec.base_url_env}")
    else:
        base_url = _check_base_url(table.base_url, _where(path, f"providers.{spec.name}.base_url"))
    return ProviderSettings(
        name=spec.name,
        api_key=Secret(key) if key else None,
        base_url=base_url,
        timeout_s=spec.timeout_s if table.timeout_s is None else table.timeout_s,
        max_retries=spec.max_retries if table.max_retries is None else table.max_retries,
    )


def _check_models(config: _ConfigFile, path: Path, registry: Registry) -> None:
    """Every ``[[models]]`` entry names a known provider, and ``default_model`` and
    ``summary_model`` name models of the catalog."""
    from .catalog import Catalog

    for n, model in enumerate(config.models):
        if model.provider not in registry:
            raise ConfigError(f"{path}: models[{n}] ({model.id}): unknown provider {model.provider!r}; "
                              f"known: {', '.join(registry.names)}")
    catalog = Catalog(config.models)
    for key in ("default_model", "summary_model"):
        name = getattr(config, key)
        if name is not None and catalog.find(name) is None:
            known = ", ".join(sorted(m.short_name for m in catalog.models))
            raise ConfigError(f"{_where(path, key)}: no model {name!r} in the catalog; use an id or "
                              f"a short name ({known}), or add it under [[models]]")


def _tcp_listen(value: str | None, config_file: object) -> str | None:
    """``host:port`` checked, or None. TCP is opt-in: nothing listens unless it is set."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'{config_file}: tcp.listen must be "host:port" (e.g. "127.0.0.1:7777"), '
                          f"got {value!r}")
    return f"{host}:{int(port)}"


_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _sync(table: _SyncConfig, path: Path) -> SyncSettings:
    """``[sync]`` checked: a nats:// or tls:// url with a host, a device name usable in
    a NATS subject token, one kind of credential, and files that exist."""
    try:
        parts = urlsplit(table.url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("nats", "tls") or not parts.hostname or not port_ok:
        raise ConfigError(f"{_where(path, 'sync.url')}: not a NATS server url: {_shown_url(table.url)!r}; "
                          'write it as nats://host[:port] or tls://host[:port], e.g. "nats://127.0.0.1:4222"')
    device = table.device_name or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "device"
    if not _DEVICE.fullmatch(device):
        raise ConfigError(f"{_where(path, 'sync.device_name')}: {device!r} is not a device name; use 1-64 "
                          "letters, digits, '-' or '_' (e.g. \"laptop\")")
    kinds = [k for k, v in (("user", table.user), ("creds", table.creds), ("nkey", table.nkey)) if v]
    if len(kinds) > 1:
        raise ConfigError(f"{_where(path, 'sync')}: set one kind of credential, not {' and '.join(kinds)}")
    if (table.user is None) != (table.password is None):
        raise ConfigError(f"{_where(path, 'sync.password' if table.user else 'sync.user')}: "
                          "user and password go together; set both or neither")
    files = {"creds": table.creds, "nkey": table.nkey, "tls.ca_file": table.tls.ca_file,
             "tls.cert_file": table.tls.cert_file, "tls.key_file": table.tls.key_file}
    for key, value in files.items():
        if value is not None and not Path(value).expanduser().is_file():
            raise ConfigError(f"{_where(path, f'sync.{key}')}: no such file: {value!r}")
    if (table.tls.cert_file is None) != (table.tls.key_file is None):
        raise ConfigError(f"{_where(path, 'sync.tls')}: cert_file and key_file go together")

    def file(value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser())

    return SyncSettings(
        url=table.url, device_name=device, user=table.user,
        password=None if table.password is None else Secret(table.password),
        creds_file=file(table.creds), nkey_file=file(table.nkey), tls_ca_file=file(table.tls.ca_file),
        tls_cert_file=file(table.tls.cert_file), tls_key_file=file(table.tls.key_file),
        connect_timeout_s=table.connect_timeout_s, lease_ttl_s=table.lease_ttl_s)


def _shown_url(url: str) -> str:
    """``url`` with any password written into it masked, for an error message."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)
