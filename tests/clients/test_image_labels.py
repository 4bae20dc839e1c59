"""An image in a message is one short line wherever a person reads the session, and
the exporters write it in each tool's own shape (never a crash, never the bytes in a
transcript)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from image_support import PNG, PNG_B64

from duologue.clients import markdown, render
from duologue.clients.exporters import claude_code, gemini_cli
from duologue.protocol import methods as m
from duologue.protocol.entities import ImageBlock, Message, Session, TaskList, TextBlock
from duologue.protocol.images import label

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
SHOT = ImageBlock(media_type="image/png", data=PNG_B64, name="shot.png")
PROMPT = Message(id="m1", session_id="s", seq=2, role="user", content=[SHOT, TextBlock(text="what is this?")],
                 created_at=NOW)


def _doc() -> m.ExportDocument:
    session = Session(id="s", title="t", created_at=NOW, updated_at=NOW, model="claude-sonnet-5-5",
                      current_model="claude-sonnet-5-5", project_id="/p")
    return m.ExportDocument(format="duologue-export", version=1, exported_at=NOW, session=session,
                            messages=[PROMPT], switches=[], tasks=TaskList(), summaries=[])


def test_the_label_names_the_image_its_type_and_size():
    assert label(SHOT) == f"[image shot.png, image/png, {len(PNG)} B]"
    assert label(ImageBlock(media_type="image/jpeg", data="A" * 4 * 1024 * 1024)) == "[image image/jpeg, 3.0 MB]"


def test_cli_show_prints_the_label_not_the_bytes():
    shown = render.message_block(PROMPT)
    assert shown == f"you:\n{label(SHOT)}\nwhat is this?" and PNG_B64 not in shown


def test_markdown_export_names_the_image():
    text = markdown.export_markdown(_doc())
    assert f"**Image** `{label(SHOT)}`" in text and PNG_B64 not in text


def test_claude_code_and_gemini_cli_exports_carry_the_image_in_their_shapes():
    records = [json.loads(line) for line in claude_code.transcript(_doc(), "/p").decode().splitlines()]
    user = next(r for r in records if r.get("type") == "user")
    assert user["message"]["content"][0] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG_B64}}
    lines = [json.loads(line) for line in gemini_cli.session_file(_doc(), "/p").decode().splitlines()]
    prompt = next(r for r in lines if r.get("type") == "user")
    assert prompt["content"][0] == {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}
