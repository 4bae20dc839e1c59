"""The language server over real stdio: lifecycle, the method table, validation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import DaemonProcess, wait_until

from duologue.clients.rpc.launcher import pid_alive, read_pid
from duologue.clients.lsp import commands as c
from duologue.clients.lsp.stdio_client import LspClient
from duologue.protocol import methods as m
from duologue.protocol.errors import ErrorCode
from duologue.protocol.paths import locate

LSP_ARGV = [sys.executable, "-m", "duologue.clients.cli", "lsp"]


async def test_initialize_offers_commands_and_code_action_and_exit_after_shutdown_returns_zero(start_lsp, project):
    client = await start_lsp(initialize=False)
    result = await client.initialize(project)
    caps = result["capabilities"]
    assert set(caps["executeCommandProvider"]["commands"]) == set(c.COMMANDS)
    assert "codeActionProvider" in caps
    assert result["serverInfo"]["name"] == "duologue"
    assert await client.shutdown_and_exit() == 0


async def test_exit_without_shutdown_returns_one(start_lsp):
    client = await start_lsp()
    client.notify("exit", None)
    assert await client.wait_exit() == 1


async def test_every_protocol_method_is_a_custom_request_validated_by_the_protocol(start_lsp):
    client = await start_lsp()
    for name in m.METHODS:
        with pytest.raises(Exception) as caught:
            await client.request(name, {"no_such_field": 1})
        assert caught.value.code == ErrorCode.INVALID_PARAMS, name
        assert caught.value.data == {"path": "$"} or "no_such_field" in caught.value.message, name
    status = await client.request("daemon/status", {})
    assert status["protocol_version"] == m.PROTOCOL_VERSION and status["emulator"] is True


async def test_wrong_param_shapes_are_answered_with_json_rpc_errors(start_lsp):
    client = await start_lsp()
    cases = [
        ({"session_id": 5}, ErrorCode.INVALID_PARAMS, "$.session_id"),
        (["a"], ErrorCode.INVALID_PARAMS, None),
        ("text", ErrorCode.INVALID_PARAMS, None),
        (7, ErrorCode.INVALID_PARAMS, None),
        ({}, ErrorCode.INVALID_PARAMS, "$"),
    ]
    for params, code, path in cases:
        with pytest.raises(Exception) as caught:
            await client.request("session/get", params, timeout=10)
        assert caught.value.code == code, params
        if path is not None:
            assert caught.value.data["path"] == path
    nested = {"session_id": "x", "tasks": [{"content": "a", "status": "bogus"}]}
    with pytest.raises(Exception) as caught:
        await client.request("tasks/update", nested, timeout=10)
    assert caught.value.data["path"] == "$.tasks[0].status"
    # Omitted params mean {} (JSON-RPC allows leaving them out).
    assert (await client.request("models/list", omit_params=True, timeout=10))["models"]


async def test_daemon_errors_reach_the_editor_with_their_code_and_data(start_lsp):
    client = await start_lsp()
    with pytest.raises(Exception) as caught:
        await client.request("session/get", {"session_id": "nope"})
    assert caught.value.code == ErrorCode.UNKNOWN_SESSION
    assert caught.value.data == {"session_id": "nope"}
    with pytest.raises(Exception) as caught:
        await client.request("session/create", {"model": "gpt-9"})
    assert caught.value.code == ErrorCode.UNKNOWN_MODEL and "gpt-9" in caught.value.message


async def test_new_sessions_belong_to_the_workspace_root_and_sessions_lists_this_project(start_lsp, project, tmp_path):
    other_root = tmp_path / "other"
    other_root.mkdir()
    here = await start_lsp()
    there = await start_lsp(root=other_root)
    mine = (await here.request("session/create", {"title": "mine"}))["session"]
    assert mine["project_id"] == str(project.resolve())
    explicit = (await here.request("session/create", {"title": "none", "project_id": None}))["session"]
    assert "project_id" not in explicit
    theirs = (await there.execute(c.NEW_SESSION, {"title": "theirs"}))["session"]
    assert theirs["project_id"] == str(other_root.resolve())
    listed = await here.execute(c.SESSIONS)
    assert [s["title"] for s in listed["sessions"]] == ["mine"]
    everything = await here.execute(c.SESSIONS, {"all": True})
    assert {s["title"] for s in everything["sessions"]} == {"mine", "none", "theirs"}


async def test_a_workspace_folder_inside_a_repository_is_the_project_the_cli_names(start_lsp, daemon, tmp_path):
    """One repository is one project, whether the editor opens its root or a folder
    below it, and whichever client creates the session."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    package = repo / "pkg" / "inner"
    package.mkdir(parents=True)
    lsp_session = (await (await start_lsp(root=package)).request("session/create", {"title": "lsp"}))["session"]
    cli = subprocess.run([sys.executable, "-m", "duologue.clients.cli", "new", "--title", "cli", "--json"],
                         env=daemon.env, cwd=package, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert lsp_session["project_id"] == json.loads(cli.stdout)["project_id"] == str(repo.resolve())


async def test_language_server_starts_the_daemon_when_none_runs(home: Path, project: Path):
    env = {**DaemonProcess(home).env}
    paths = locate(env)
    client = await LspClient.spawn([*LSP_ARGV, "--emulator"], env=env, cwd=project)
    try:
        await client.initialize(project)
        status = await client.request("daemon/status", {}, timeout=30)
        assert status["emulator"] is True and pid_alive(status["pid"])
        assert read_pid(paths) == status["pid"]
        await client.request("daemon/shutdown", {})
        await asyncio.to_thread(wait_until, lambda: not pid_alive(status["pid"]), 15)
        assert await client.shutdown_and_exit() == 0
    finally:
        await client.kill()
        pid = read_pid(paths)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_params_reach_the_daemon_as_plain_json_whatever_their_members(start_lsp):
    client = await start_lsp()
    metadata = {"jsonrpc": "2.0", "type_name": "x", "_private": "kept", "list": "[1, 2]"}
    created = await client.request("session/create", {"title": "odd keys", "metadata": metadata})
    assert created["session"]["metadata"] == metadata
    with pytest.raises(Exception) as caught:
        await client.request("session/create", {"metadata": {"jsonrpc": "2.0", "method": "x", "id": 1}})
    assert caught.value.code == ErrorCode.INVALID_PARAMS
