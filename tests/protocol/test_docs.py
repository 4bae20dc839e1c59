"""docs/protocol.md agrees with the method table, the notifications and the error
codes: a client written from the page alone must not miss or invent anything."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from duologue.protocol.errors import ErrorCode
from duologue.protocol.jsonrpc import (
    Call,
    Incoming,
    Response,
    decode_notification,
    decode_params,
    decode_result,
    parse_frame,
    parse_replies,
)
from duologue.protocol.methods import MAX_FRAME_BYTES, METHODS, NOTIFICATIONS, PROTOCOL_VERSION

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TEXT = DOC.read_text(encoding="utf-8")
HEADING = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)


def sections() -> dict[str, str]:
    """Each ``### `name` `` heading's text, up to the next heading of level 2 or 3."""
    out = {}
    for match in HEADING.finditer(TEXT):
        end = re.compile(r"^#{2,3} ", re.MULTILINE).search(TEXT, match.end())
        out[match.group(1)] = TEXT[match.end(): end.start() if end else len(TEXT)]
    return out


def flat(text: str) -> str:
    return " ".join(text.split())


def field_names(t: type) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(t)]


SECTIONS = sections()


def test_every_method_and_notification_has_a_section():
    missing = [name for name in [*METHODS, *NOTIFICATIONS] if name not in SECTIONS]
    assert not missing, f"docs/protocol.md has no ### `name` section for: {missing}"


def test_docs_describe_no_method_or_notification_that_does_not_exist():
    invented = [name for name in SECTIONS if name not in METHODS and name not in NOTIFICATIONS]
    assert not invented, f"docs/protocol.md documents names not in the tables: {invented}"


def test_methods_are_documented_in_table_order():
    documented = [name for name in SECTIONS if name in METHODS]
    assert documented == list(METHODS)


@pytest.mark.parametrize("name", list(METHODS))
def test_method_section_quotes_the_tables_doc_line(name):
    assert flat(METHODS[name].doc) in flat(SECTIONS.get(name, "")), (
        f"the `{name}` section of docs/protocol.md must quote its doc line: {METHODS[name].doc!r}"
    )


@pytest.mark.parametrize("name", list(METHODS))
def test_method_section_names_every_params_and_result_field(name):
    method = METHODS[name]
    section = SECTIONS.get(name, "")
    missing = [f for f in field_names(method.params) + field_names(method.result)
               if f"`{f}`" not in section]
    assert not missing, f"the `{name}` section of docs/protocol.md does not mention {missing}"


@pytest.mark.parametrize("name", list(NOTIFICATIONS))
def test_notification_section_quotes_its_doc_line_and_names_every_field(name):
    note = NOTIFICATIONS[name]
    section = SECTIONS.get(name, "")
    assert flat(note.doc) in flat(section)
    missing = [f for f in field_names(note.params) if f"`{f}`" not in section]
    assert not missing, f"the `{name}` section of docs/protocol.md does not mention {missing}"


@pytest.mark.parametrize("name", list(NOTIFICATIONS))
def test_notification_section_says_whether_it_is_stored(name):
    section = flat(SECTIONS.get(name, "")).lower()
    if NOTIFICATIONS[name].stored:
        assert "stored" in section and "not stored" not in section
    else:
        assert "not stored" in section


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.name)
def test_every_error_code_has_a_row_in_the_error_table(code):
    row = re.compile(rf"^\| {int(code)} \| `{code.name}` \| .+\|$", re.MULTILINE)
    assert row.search(TEXT), f"docs/protocol.md's error table has no row for {code.name} ({int(code)})"


def test_docs_state_the_current_protocol_version_and_frame_limit():
    assert f"**Protocol version:** `{PROTOCOL_VERSION}`" in TEXT
    assert str(MAX_FRAME_BYTES) in TEXT
    assert f"{MAX_FRAME_BYTES // (1024 * 1024)} MiB" in TEXT


def example_frames() -> list[tuple[str, bytes]]:
    """The worked example's frames: ('->' or '<-', the JSON after the arrow)."""
    start = TEXT.index('<a id="worked-example"></a>')
    end = TEXT.index("<a id=", start + 1)
    frames = []
    for line in TEXT[start:end].splitlines():
        if line.startswith(("→ ", "← ")):
            frames.append(("->" if line[0] == "→" else "<-", line[2:].encode()))
    return frames


def test_worked_example_frames_decode_with_the_protocols_own_types():
    frames = example_frames()
    assert len(frames) >= 9
    sent: dict[int | str, str] = {}
    for direction, data in frames:
        if direction == "->":
            (call,) = parse_frame(data).items
            assert isinstance(call, Call), data
            decode_params(call)
            sent[call.id] = call.method
            continue
        for reply in parse_replies(data):
            if isinstance(reply, Incoming):
                assert reply.method in NOTIFICATIONS
                assert decode_notification(reply) is not None
            else:
                assert isinstance(reply, Response)
                assert reply.id in sent, f"response to an id never sent: {data!r}"
                if reply.error is None:
                    decode_result(sent[reply.id], reply.result)
    assert {"session/create", "session/attach", "session/switch_model"} <= set(sent.values())


def test_worked_example_seqs_are_gap_free():
    seqs = []
    for direction, data in example_frames():
        if direction == "<-":
            seqs += [decode_notification(r).seq for r in parse_replies(data)
                     if isinstance(r, Incoming)]
    assert seqs == list(range(1, len(seqs) + 1))
