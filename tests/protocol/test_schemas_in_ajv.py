"""schemas/ as a JavaScript client meets it: Ajv in strict mode, with ajv-formats.

docs/protocol.md promises that Ajv's strict mode accepts every schema once ajv-formats
supplies the ``date-time`` format and the ``formatMinimum`` keyword. Strict mode is
pickier than the Python validator in test_schemas.py (no union ``type`` arrays, no
``required`` name that the same subschema's ``properties`` leave undefined), so only
running Ajv itself keeps that promise honest.

The test installs the pinned Ajv into tests/protocol/ajv/node_modules with ``npm ci``
(once; CI's machine has node, npm and the registry) and is skipped, saying why, only
on a machine without node or npm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from duologue.protocol.entities import Session
from duologue.protocol.jsonrpc import encode_event, encode_request, encode_result
from duologue.protocol.methods import METHODS, NOTIFICATIONS

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
AJV_DIR = Path(__file__).with_name("ajv")


def _installed(package: str) -> str | None:
    manifest = AJV_DIR / "node_modules" / package / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def ajv() -> Any:
    """A function: cases [(schema file, instance)] -> Ajv's whole report."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Ajv needs Node.js: install node and npm to check schemas/ in Ajv's strict mode")
    pinned = json.loads((AJV_DIR / "package.json").read_text(encoding="utf-8"))["dependencies"]
    if any(_installed(name) != version for name, version in pinned.items()):
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=AJV_DIR,
                              capture_output=True, text=True, timeout=110)
        assert done.returncode == 0, f"npm ci in {AJV_DIR} failed:\n{done.stdout}\n{done.stderr}"

    def run(cases: list[tuple[str, Any]]) -> dict[str, Any]:
        stdin = json.dumps([{"schema": schema, "instance": instance} for schema, instance in cases])
        done = subprocess.run([node, str(AJV_DIR / "check.mjs"), str(SCHEMAS)], input=stdin,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def test_every_schema_compiles_in_ajv_strict_mode_with_ajv_formats(ajv):
    report = ajv([])
    expected = len([p for p in SCHEMAS.glob("*.json") if p.name != "index.json"])
    assert report["refused"] == {}
    assert report["compiled"] == expected


def _wire(frame: bytes) -> Any:
    return json.loads(frame)


def test_ajv_accepts_what_the_protocol_sends(ajv, make_example):
    """Every method's request and result and every notification, with every field set."""
    cases: list[tuple[str, Any]] = []
    for name, method in METHODS.items():
        cases.append(("Request.json", _wire(encode_request(1, name, make_example(method.params, full=True)))))
        response = _wire(encode_result(1, make_example(method.result, full=True)))
        cases += [("Response.json", response), (f"{method.result.__name__}.json", response["result"])]
    for name, note in NOTIFICATIONS.items():
        cases.append(("Notification.json", _wire(encode_event(make_example(note.params, full=True)))))
    results = ajv(cases)["results"]
    refused = [(schema, r["errors"]) for (schema, _), r in zip(cases, results) if not r["valid"]]
    assert refused == []


SESSION = {"id": "01JDUOLOGUE0000000000000000", "title": "t", "created_at": "2025-03-04T05:06:07Z",
           "updated_at": "2025-03-04T05:06:07Z", "model": "auto", "current_model": "claude-sonnet-5-5"}


@pytest.mark.parametrize(("schema", "instance", "why"), [
    ("Session.json", {**SESSION, "created_at": "yesterday"}, "a timestamp that is not RFC 3339"),
    ("ImportMessage.json", {"external_id": "e", "role": "user", "content": [],
                            "created_at": "1969-12-31T23:59:59Z"}, "an import time before 1970"),
    ("Notification.json", {"jsonrpc": "2.0", "id": 3, "method": "progress", "params": {}},
     "a notification with an id"),
    ("Response.json", {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "x"}},
     "a result and an error at once"),
    ("Request.json", {"jsonrpc": "2.0", "id": 1.5, "method": "daemon/status"}, "a fractional id"),
])
def test_ajv_refuses_what_the_daemon_refuses(ajv, schema, instance, why):
    [result] = ajv([(schema, instance)])["results"]
    assert not result["valid"], why


def test_ajv_accepts_an_ordinary_session_that_the_protocol_decodes(ajv):
    [result] = ajv([("Session.json", SESSION)])["results"]
    assert result == {"valid": True, "errors": []}
    assert msgspec.convert(SESSION, Session).current_model == "claude-sonnet-5-5"
