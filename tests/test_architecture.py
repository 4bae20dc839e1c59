"""The dependency rule of README.md's Layout section, checked: clients -> protocol <- daemon.
Also: no module but the provider registry and the modules it names knows a provider.

``lint-imports`` (import-linter) checks every import, including those inside
functions, against the contracts below. Its default ``root_package = "duologue"``
sees nothing here: ``duologue`` is a namespace package whose editable install has
no directory to scan. Naming the three mapped packages as roots works, and external
packages are then named by their top level (``google``, not ``google.genai``).
The AST scan says the same in plain Python, so neither check can be turned off
silently by the other's configuration.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

PROTOCOL_FORBIDDEN = ("duologue.daemon", "duologue.clients", "zmq", "lmdb", "asyncio",
                      "anthropic", "google.genai", "socket")
CLIENTS_FORBIDDEN = ("duologue.daemon", "anthropic", "google.genai", "lmdb")

IMPORT_CONTRACTS = """
[tool.importlinter]
root_packages = ["duologue.protocol", "duologue.daemon", "duologue.clients"]
include_external_packages = true

[[tool.importlinter.contracts]]
name = "protocol is pure: it imports neither the daemon, the clients nor any I/O library"
type = "forbidden"
source_modules = ["duologue.protocol"]
forbidden_modules = ["duologue.daemon", "duologue.clients", "zmq", "lmdb", "anthropic", "google",
                     "asyncio", "socket"]

[[tool.importlinter.contracts]]
name = "clients never import the daemon, a provider SDK or the store library"
type = "forbidden"
source_modules = ["duologue.clients"]
forbidden_modules = ["duologue.daemon", "anthropic", "google", "lmdb"]
"""


def test_import_linter_contracts_are_kept(tmp_path: Path):
    assert LINT_IMPORTS.exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    config = tmp_path / "importlinter.toml"
    config.write_text(IMPORT_CONTRACTS)
    r = subprocess.run([str(LINT_IMPORTS), str(config)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout, r.stdout


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """Every module a file imports, relative imports resolved against ``package``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT / folder).with_suffix("")
        package = ".".join(("duologue", folder, *rel.parts[:-1]))
        for line, module in imported_modules(path, package):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("folder, forbidden", [("protocol", PROTOCOL_FORBIDDEN),
                                               ("clients", CLIENTS_FORBIDDEN)])
def test_no_file_imports_across_the_boundary(folder: str, forbidden: tuple[str, ...]):
    assert list((ROOT / folder).rglob("*.py")), f"no Python files under {folder}/"
    assert violations(folder, forbidden) == []


def test_the_scan_catches_a_forbidden_import(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..daemon import store\n    import zmq.asyncio\n")
    found = [m for _, m in imported_modules(bad, "duologue.protocol")]
    assert "duologue.daemon" in found and "zmq.asyncio" in found


def _module_graph() -> dict[str, set[str]]:
    """Every module of ours and the modules of ours it imports (anywhere in the file,
    ``TYPE_CHECKING`` blocks and function bodies included)."""
    files: dict[str, Path] = {}
    for folder in ("protocol", "daemon", "clients"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            files[".".join(("duologue", folder, *parts))] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = imported_modules(path, package)
        # ``from . import x`` names the package and x; it imports x, not the package's own code
        through = {(line, target.rpartition(".")[0]) for line, target in found if target in files}
        graph[name] = {target for line, target in found
                       if target in files and target != name and (line, target) not in through}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_one_that_imports_it_back():
    graph = _module_graph()
    assert "duologue.daemon.store.records" in graph["duologue.daemon.store"]
    assert import_cycles(graph) == []


def test_the_client_library_imports_no_client_app():
    """clients/rpc/ is what every client shares: the apps (CLI, chat, language server,
    importers) build on it, so it may import only itself and the protocol."""
    graph = _module_graph()
    library = [name for name in graph if name.startswith("duologue.clients.rpc")]
    assert "duologue.clients.rpc.client" in library
    outside = sorted(f"{name} imports {target}" for name in library for target in graph[name]
                     if not target.startswith(("duologue.clients.rpc", "duologue.protocol")))
    assert outside == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


# --- providers are named in one place -------------------------------------------------------

OTHER_TOOLS_FORMATS = (ROOT / "clients" / "importers", ROOT / "clients" / "exporters")
"""Importers read and exporters write other tools' files, whose own words may be a
provider's name (a Gemini CLI record's ``type: "gemini"``): data formats, not a branch
on our providers."""


def _module_file(dotted: str) -> Path:
    """The file of ``duologue.<folder>.<module>[:attribute]`` in this repository."""
    parts = dotted.partition(":")[0].split(".")
    assert parts[0] == "duologue", dotted
    return ROOT.joinpath(*parts[1:]).with_suffix(".py")


def provider_words() -> tuple[set[str], set[Path]]:
    """The registry's provider names and variable names, and the files that may say them:
    the registry and each module it names (adapters, error mappings, listings, emulator
    APIs)."""
    from duologue.daemon.providers.registry import BUILTIN

    words = {spec.name for spec in BUILTIN} | {v for spec in BUILTIN for v in (*spec.key_env, spec.base_url_env)}
    allowed = {ROOT / "daemon" / "providers" / "registry.py"}
    for spec in BUILTIN:
        allowed |= {_module_file(p) for p in (spec.adapter, spec.map_error, spec.listing, spec.emulator) if p}
    return words, allowed


def named_providers(path: Path, words: set[str]) -> list[str]:
    """Where ``path`` writes one of ``words`` as a whole string literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno} says {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words]


def test_no_module_outside_the_registry_and_its_modules_names_a_provider():
    words, allowed = provider_words()
    assert all(path.exists() for path in allowed), sorted(str(p) for p in allowed if not p.exists())
    found = []
    for folder in ("protocol", "daemon", "clients"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path not in allowed and not any(path.is_relative_to(f) for f in OTHER_TOOLS_FORMATS):
                found += named_providers(path, words)
    assert found == [], "read the provider from daemon/providers/registry.py instead"


def test_the_provider_scan_catches_a_branch_on_a_provider(tmp_path: Path):
    words, _ = provider_words()
    bad = tmp_path / "bad.py"
    bad.write_text('def key(provider):\n    return f"{provider == \'gemini\'}" or "ANTHROPIC_API_KEY"\n')
    said = sorted(line.rpartition(" says ")[2] for line in named_providers(bad, words))
    assert said == ["'ANTHROPIC_API_KEY'", "'gemini'"]
