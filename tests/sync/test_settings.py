"""``[sync]`` in config.toml: read once into the settings, every bad value refused
with the file, the line and what to write instead; absent, nothing is replicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from duologue.daemon.settings import ConfigError, load_settings


def _settings(home: Path, config: str):
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "config.toml").write_text(config)
    return load_settings({"DUOLOGUE_HOME": str(home)})


def test_without_a_sync_table_nothing_is_replicated(home: Path):
    assert _settings(home, "").sync is None


def test_a_sync_table_gives_the_url_the_device_and_a_hidden_password(home: Path):
    sync = _settings(home, '[sync]\nurl = "tls://bob@nats.example.com:4443"\ndevice_name = "laptop"\n'
                           'user = "bob"\npassword = "s3cret"\n').sync
    assert sync is not None
    assert (sync.url, sync.device_name, sync.user) == ("tls://bob@nats.example.com:4443", "laptop", "bob")
    assert sync.server == "tls://nats.example.com:4443"
    assert "s3cret" not in repr(sync) and sync.password.reveal() == "s3cret"


def test_the_device_name_defaults_to_a_usable_form_of_the_host_name(home: Path):
    sync = _settings(home, '[sync]\nurl = "nats://127.0.0.1:4222"\n').sync
    assert sync is not None and sync.device_name and " " not in sync.device_name and "." not in sync.device_name


@pytest.mark.parametrize(("table", "says"), [
    ('url = "http://127.0.0.1:4222"', r"line 2: sync.url: not a NATS server url"),
    ('url = "nats://bob:s3cret@:99999"', r"sync.url: not a NATS server url: 'nats://bob:\*\*\*@:99999'"),
    ('url = "nats://h"\ndevice_name = "my laptop"', r"line 3: sync.device_name: 'my laptop' is not a device name"),
    ('url = "nats://h"\nuser = "bob"', r"sync.password: user and password go together"),
    ('url = "nats://h"\ncreds = "/nowhere/x.creds"', r"line 3: sync.creds: no such file: '/nowhere/x.creds'"),
    ('url = "nats://h"\nuser = "a"\npassword = "b"\nnkey = "/x"', r"sync: set one kind of credential, not user and nkey"),
    ('url = "nats://h"\nconnect_timeout_s = 0', r"sync.connect_timeout_s"),
    ('device_name = "x"', r"sync.*url"),
])
def test_a_bad_sync_value_is_refused_naming_the_key_and_what_to_write(home: Path, table: str, says: str):
    with pytest.raises(ConfigError, match=says) as refused:
        _settings(home, f"[sync]\n{table}\n")
    assert "s3cret" not in str(refused.value)
