"""Regenerate ``schemas/`` from the protocol package; the one command that does it.

    .venv/bin/python schemas/generate.py           # write new and changed files, remove stale ones
    .venv/bin/python schemas/generate.py --check   # exit 1 and list what differs

The schemas come from :func:`duologue.protocol.schema.schema_files`. Two things the
running protocol package cannot tell it are read here from the source instead,
because Python keeps no attribute docstrings at runtime: the meaning of each
``ErrorCode`` member and the docstrings under struct fields. Reading source is a
build step, so it lives in this script and never in ``protocol/``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from pathlib import Path
from types import ModuleType

from duologue.protocol import entities, errors, methods
from duologue.protocol.errors import ErrorCode
from duologue.protocol.schema import schema_files

SCHEMAS_DIR = Path(__file__).resolve().parent
COMMAND = ".venv/bin/python schemas/generate.py"


def attribute_docs(module: ModuleType) -> dict[str, dict[str, str]]:
    """Class name -> attribute name -> the string literal right below the attribute."""
    tree = ast.parse(inspect.getsource(module))
    out: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs: dict[str, str] = {}
        for stmt, after in zip(node.body, node.body[1:]):
            name = _assigned_name(stmt)
            text = _string_literal(after)
            if name is not None and text is not None:
                docs[name] = text
        if docs:
            out[node.name] = docs
    return out


def _assigned_name(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def _string_literal(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        if isinstance(stmt.value.value, str):
            return stmt.value.value
    return None


def error_docs() -> dict[ErrorCode, str]:
    found = attribute_docs(errors).get("ErrorCode", {})
    return {code: found[code.name] for code in ErrorCode if code.name in found}


def generated_files() -> dict[str, str]:
    """What ``schemas/`` must contain (file name -> text), generated files only."""
    field_docs = {**attribute_docs(entities), **attribute_docs(methods)}
    return schema_files(error_docs=error_docs(), field_docs=field_docs)


def differences(directory: Path, files: dict[str, str]) -> dict[str, list[str]]:
    """Stale, missing and extra ``*.json`` files of ``directory`` against ``files``."""
    present = {p.name for p in directory.glob("*.json")}
    return {
        "stale": sorted(
            name for name in files.keys() & present
            if (directory / name).read_text(encoding="utf-8") != files[name]
        ),
        "missing": sorted(files.keys() - present),
        "extra": sorted(present - files.keys()),
    }


def write(directory: Path, files: dict[str, str]) -> dict[str, list[str]]:
    diff = differences(directory, files)
    for name in diff["stale"] + diff["missing"]:
        # newline="" keeps "\n" on every platform, so the bytes match the check.
        with open(directory / name, "w", encoding="utf-8", newline="") as f:
            f.write(files[name])
    for name in diff["extra"]:
        (directory / name).unlink()
    return diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true",
        help="change nothing; exit 1 listing stale, missing and extra files",
    )
    args = parser.parse_args(argv)
    files = generated_files()
    if args.check:
        diff = differences(SCHEMAS_DIR, files)
        if not any(diff.values()):
            print(f"schemas/ is up to date ({len(files)} files)")
            return 0
        for kind, names in diff.items():
            for name in names:
                print(f"{kind}: schemas/{name}")
        print(f"schemas/ is out of date; run: {COMMAND}", file=sys.stderr)
        return 1
    diff = write(SCHEMAS_DIR, files)
    verbs = {"stale": "updated", "missing": "created", "extra": "removed"}
    for kind, names in diff.items():
        for name in names:
            print(f"{verbs[kind]}: schemas/{name}")
    print(f"schemas/ holds {len(files)} generated files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
