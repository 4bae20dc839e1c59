"""JSON Schema for the protocol, built from the method table. Pure: text out, no files.

``schemas/`` holds the output, committed, so that a client in any language can be
written from it and ``docs/protocol.md`` alone. The layout is one file per type:

- ``<Type>.json`` for every params, result, notification params and entity type
  reachable from :data:`METHODS` and :data:`NOTIFICATIONS` (JSON Schema 2020-12).
- ``Request.json``, ``Response.json``, ``Notification.json`` and ``ErrorObject.json``:
  the JSON-RPC envelopes. ``Request.json`` checks a request's params against its
  method's params type, ``Notification.json`` likewise for the daemon's notifications.
- ``index.json``: the protocol version, every method, notification and error code.

Every schema has an absolute ``$id`` under :data:`SCHEMA_BASE` and refers to the
others by relative ``$ref`` (``"Session.json"``), which resolves against that
``$id``. The base is an identifier, not a location (``.invalid`` never resolves):
a validator is given all files up front (a registry or a schema store keyed by
``$id``), the standard way to use multi-file schemas offline.

The output is deterministic (sorted keys, stable list order, one trailing newline)
so a test can compare it with the committed files byte for byte.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

import msgspec

from .errors import ErrorCode
from .methods import MAX_FRAME_BYTES, METHODS, NOTIFICATIONS, PROTOCOL_VERSION

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = f"https://duologue.invalid/schemas/v{PROTOCOL_VERSION.split('.')[0]}/"
"""Base of every ``$id``: one identity per protocol major version."""

INDEX = "index.json"
ENVELOPES = ("Request", "Response", "Notification", "ErrorObject")

FieldDocs = Mapping[str, Mapping[str, str]]
"""Descriptions of struct fields: type name -> field name -> text."""


def schema_files(
    *, error_docs: Mapping[ErrorCode, str], field_docs: FieldDocs | None = None
) -> dict[str, str]:
    """Every file of ``schemas/``, by file name, as the exact text to commit.

    ``error_docs`` gives the meaning of each :class:`ErrorCode` (all are required:
    a code without a meaning is an undocumented promise). ``field_docs`` adds a
    ``description`` to struct fields that have none from ``msgspec.Meta``.
    """
    missing = [code.name for code in ErrorCode if not error_docs.get(code)]
    if missing:
        raise ValueError(f"error codes without a doc: {', '.join(missing)}")

    types = _reachable_roots()
    _, components = msgspec.json.schema_components(types, ref_template="{name}.json")
    clash = sorted(set(components) & {*ENVELOPES, "index"})
    if clash:
        raise ValueError(f"type names clash with envelope or index files: {', '.join(clash)}")

    names = {t: _component_name(t, components) for t in types}
    docs = field_docs or {}
    documents: dict[str, dict[str, Any]] = {}
    for name, body in components.items():
        documents[name] = _finish(name, _clean(body, docs.get(name, {})))
    for name, body in _envelopes(names).items():
        documents[name] = _finish(name, body)

    files = {f"{name}.json": _dump(doc) for name, doc in documents.items()}
    files[INDEX] = _dump(_index(names, error_docs))
    return dict(sorted(files.items()))


def schema_id(file_name: str) -> str:
    """The ``$id`` of the schema stored as ``file_name``."""
    return SCHEMA_BASE + file_name


# --- types -----------------------------------------------------------------------------


def _reachable_roots() -> list[type]:
    """Params, result and notification types in table order, each once."""
    seen: dict[type, None] = {}
    for m in METHODS.values():
        seen.setdefault(m.params)
        seen.setdefault(m.result)
    for n in NOTIFICATIONS.values():
        seen.setdefault(n.params)
    return list(seen)


def _component_name(t: type, components: Mapping[str, Any]) -> str:
    # msgspec names a component by its class name; a generic or clashing name would
    # need its own mapping, so fail loudly rather than guess.
    if t.__name__ not in components:
        raise ValueError(f"no schema component named {t.__name__!r} for {t!r}")
    return t.__name__


def _clean(body: dict[str, Any], field_docs: Mapping[str, str]) -> dict[str, Any]:
    """Normalize what msgspec emits into portable 2020-12 vocabulary.

    - Docstrings are dedented (:func:`_prose`), so the output does not depend on the
      Python version (3.13 strips indentation at compile time).
    - ``discriminator`` (an OpenAPI keyword) is dropped: strict validators such as
      Ajv refuse unknown keywords, and each tagged struct already requires its
      ``type`` value, so ``anyOf`` picks the right branch without it.
    """
    out = _strip_discriminators(body)
    if "description" in out:
        out["description"] = _prose(out["description"])
    props = out.get("properties", {})
    for field, text in field_docs.items():
        if field in props and "description" not in props[field]:
            props[field]["description"] = _prose(text)
    return out


def _prose(docstring: str) -> str:
    """A docstring as plain text for readers of any language: dedented, and with
    reStructuredText's double backquotes reduced to the single ones of Markdown."""
    return inspect.cleandoc(docstring).replace("``", "`")


def _strip_discriminators(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_discriminators(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_strip_discriminators(v) for v in node]
    return node


def _finish(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": SCHEMA_DIALECT, "$id": schema_id(f"{name}.json"), **body}


# --- envelopes -------------------------------------------------------------------------


def _ref(t: type, names: Mapping[type, str]) -> dict[str, str]:
    return {"$ref": f"{names[t]}.json"}


def _has_required(t: type) -> bool:
    return any(f.required for f in msgspec.structs.fields(t))


def _one_of_types(*names: str) -> dict[str, Any]:
    """A value of any of these JSON types, spelt as ``anyOf`` rather than a ``type``
    array: Ajv's strict mode refuses union types unless told to allow them."""
    return {"anyOf": [{"type": name} for name in names]}


def _present(member: str) -> dict[str, Any]:
    """A subschema requiring ``member``. It names the member under ``properties`` too,
    since Ajv's strict mode refuses a ``required`` name its own subschema leaves
    undefined (the parent's ``properties`` do not count)."""
    return {"properties": {member: {}}, "required": [member]}


def _envelopes(names: Mapping[type, str]) -> dict[str, dict[str, Any]]:
    request_rules = []
    for m in METHODS.values():
        then: dict[str, Any] = {"properties": {"params": _ref(m.params, names)}}
        if _has_required(m.params):
            then["required"] = ["params"]
        request_rules.append(
            {"if": {"properties": {"method": {"const": m.name}}, "required": ["method"]},
             "then": then}
        )
    notification_rules = [
        {"if": {"properties": {"method": {"const": n.name}}, "required": ["method"]},
         "then": {"properties": {"params": _ref(n.params, names)}}}
        for n in NOTIFICATIONS.values()
    ]
    version = {"const": "2.0"}
    return {
        "Request": {
            "title": "Request",
            "description": (
                "A JSON-RPC 2.0 request from a client. Without \"id\" it is a notification "
                "and gets no response. \"params\" is checked against the method's params "
                "type; members other than these four are tolerated and ignored."
            ),
            "type": "object",
            "properties": {
                "jsonrpc": version,
                "id": _one_of_types("integer", "string"),
                "method": {"enum": list(METHODS)},
                "params": {"type": "object"},
            },
            "required": ["jsonrpc", "method"],
            "allOf": request_rules,
        },
        "Response": {
            "title": "Response",
            "description": (
                "The daemon's answer to one request: \"result\" or \"error\", never both. "
                "\"id\" is null only when the request's id could not be read. The result's "
                "type is the method's result type (see index.json)."
            ),
            "type": "object",
            "properties": {
                "jsonrpc": version,
                "id": _one_of_types("integer", "string", "null"),
                "result": {},
                "error": {"$ref": "ErrorObject.json"},
            },
            "required": ["jsonrpc", "id"],
            "oneOf": [_present("result"), _present("error")],
        },
        "ErrorObject": {
            "title": "ErrorObject",
            "description": (
                "\"code\" is one of the codes in index.json (a newer daemon may add "
                "codes); \"message\" is for people; \"data\" is optional structured detail, "
                "e.g. {\"path\": \"$.session_id\"} for invalid params."
            ),
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "data": {},
            },
            "required": ["code", "message"],
        },
        "Notification": {
            "title": "Notification",
            "description": (
                "A JSON-RPC 2.0 notification from the daemon (no \"id\"). Known methods "
                "have their params checked; a client ignores methods it does not know, "
                "which a newer daemon of the same major version may send."
            ),
            "type": "object",
            "properties": {
                "jsonrpc": version,
                "method": {"type": "string"},
                "params": {"type": "object"},
                "id": False,
            },
            "required": ["jsonrpc", "method", "params"],
            "allOf": notification_rules,
        },
    }


# --- index -----------------------------------------------------------------------------


def _index(names: Mapping[type, str], error_docs: Mapping[ErrorCode, str]) -> dict[str, Any]:
    return {
        "protocol_version": PROTOCOL_VERSION,
        "max_frame_bytes": MAX_FRAME_BYTES,
        "schema_base": SCHEMA_BASE,
        "envelopes": {
            "request": "Request.json",
            "response": "Response.json",
            "notification": "Notification.json",
            "error": "ErrorObject.json",
        },
        "methods": [
            {
                "name": m.name,
                "doc": m.doc,
                "params": f"{names[m.params]}.json",
                "result": f"{names[m.result]}.json",
            }
            for m in METHODS.values()
        ],
        "notifications": [
            {
                "name": n.name,
                "doc": n.doc,
                "params": f"{names[n.params]}.json",
                "stored": n.stored,
            }
            for n in NOTIFICATIONS.values()
        ],
        "errors": [
            {"name": code.name, "code": int(code), "doc": _prose(error_docs[code])}
            for code in ErrorCode
        ],
    }


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
