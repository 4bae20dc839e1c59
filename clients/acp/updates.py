"""Duologue records and events as ACP session updates, and ACP prompts as a send.

Pure: no I/O, no asyncio. :mod:`.agent` feeds it what the daemon sends and writes
what it returns; the tests and the bench can call it directly.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, get_args
from urllib.parse import unquote, urlparse

from acp import schema as a

from duologue.protocol import images as img
from duologue.protocol import methods as m
from duologue.protocol.entities import (
    AUTO,
    CodeContextBlock,
    ImageBlock,
    ImageMediaType,
    Message,
    ModelInfo,
    Session,
    TaskList,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

MODEL_OPTION = "model"
THINKING_OPTION = "thinking"
THINKING_DEFAULT = "default"
THINKING_VALUES = ("default", "off", "low", "medium", "high", "max")
MAX_LINKED_FILE_BYTES = 1_000_000
"""A ``resource_link`` to a local file larger than this is refused, not attached."""

TOOL_TITLES = {"update_tasks": "Update the task list"}


IMAGE_TYPES: tuple[str, ...] = get_args(ImageMediaType)
_IMAGE_ALIASES = {"image/jpg": "image/jpeg"}


class PromptRefused(ValueError):
    """A prompt block this agent cannot take (audio, a binary resource, a bad image...)."""


# --- prompts ------------------------------------------------------------------------------


class Prompt(NamedTuple):
    """A ``session/prompt`` as ``session/send`` takes it."""

    text: str
    context: list[CodeContextBlock]
    images: list[ImageBlock]


def prompt_to_send(blocks: Iterable[Any], cwd: str | None) -> Prompt:
    """The text, code context and images of a ``session/prompt``.

    Text blocks are joined; an embedded text resource is attached verbatim as code
    context; a link to a local file is read and attached; a link elsewhere is named in
    the text (the model cannot fetch it); an image is checked as the daemon checks it,
    so the editor hears which block is wrong."""
    texts: list[str] = []
    context: list[CodeContextBlock] = []
    pictures: list[ImageBlock] = []
    for index, block in enumerate(blocks):
        if isinstance(block, a.TextContentBlock):
            texts.append(block.text)
        elif isinstance(block, a.ImageContentBlock):
            pictures.append(_image(block, index))
        elif isinstance(block, a.EmbeddedResourceContentBlock):
            resource = block.resource
            if not isinstance(resource, a.TextResourceContents):
                raise PromptRefused(f"the binary resource {resource.uri} cannot be attached: "
                                    "only text resources become code context")
            context.append(_context(resource.uri, resource.text, resource.mime_type, cwd))
        elif isinstance(block, a.ResourceContentBlock):
            path = _local_path(block.uri)
            if path is None:
                texts.append(f"[{block.name}]({block.uri})")
                continue
            try:
                if path.stat().st_size > MAX_LINKED_FILE_BYTES:
                    raise PromptRefused(f"{path} is larger than {MAX_LINKED_FILE_BYTES} bytes; "
                                        "attach the part that matters instead")
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise PromptRefused(f"{path} is not UTF-8 text and cannot be attached") from None
            except OSError as exc:
                raise PromptRefused(f"{path} cannot be read: {exc.strerror}") from None
            context.append(_context(block.uri, text, block.mime_type, cwd))
        else:
            kind = getattr(block, "type", type(block).__name__)
            raise PromptRefused(f"{kind} content is not supported: the agent takes text, images and resources")
    text = "\n\n".join(t for t in texts if t)
    if not text and not context and not pictures:
        raise PromptRefused("the prompt holds no text")
    return Prompt(text, context, pictures)


def _image(block: a.ImageContentBlock, index: int) -> ImageBlock:
    media_type = _IMAGE_ALIASES.get(block.mime_type, block.mime_type)
    if media_type not in IMAGE_TYPES:
        raise PromptRefused(f"prompt block {index}: {block.mime_type} images cannot be sent; duologue takes "
                            f"{', '.join(IMAGE_TYPES)} (what both Claude and Gemini read)")
    name = Path(urlparse(block.uri).path).name or None if block.uri else None
    image = ImageBlock(media_type=media_type, data=block.data, name=name)  # type: ignore[arg-type]
    wrong = img.problem(image)
    if wrong is not None:
        raise PromptRefused(f"prompt block {index}: {wrong}")
    return image


def image_content(block: ImageBlock) -> a.ImageContentBlock:
    """A stored image as an ACP image block (a user message shown back)."""
    return a.ImageContentBlock(type="image", mime_type=block.media_type, data=block.data)


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme and uri.startswith("/"):
        return Path(uri)
    return None


def _context(uri: str, text: str, mime_type: str | None, cwd: str | None) -> CodeContextBlock:
    path = _local_path(uri)
    shown = uri
    if path is not None:
        shown = str(path)
        if cwd:
            try:
                shown = os.path.relpath(path, cwd) if path.is_relative_to(cwd) else str(path)
            except ValueError:
                pass
    return CodeContextBlock(path=shown, text=text, language=_language(shown, mime_type))


def _language(path: str, mime_type: str | None) -> str | None:
    suffix = Path(path).suffix.lstrip(".")
    if suffix:
        return suffix
    if mime_type and "/" in mime_type:
        return mime_type.split("/", 1)[1].removeprefix("x-")
    return None


def context_resource(block: CodeContextBlock, cwd: str | None) -> a.EmbeddedResourceContentBlock:
    """Attached code as an ACP embedded resource (a user message shown back)."""
    path = Path(block.path)
    if not path.is_absolute() and cwd:
        path = Path(cwd) / path
    uri = path.as_uri() if path.is_absolute() else block.path
    mime = mimetypes.guess_type(block.path)[0] or "text/plain"
    return a.EmbeddedResourceContentBlock(type="resource", resource=a.TextResourceContents(
        uri=uri, text=block.text, mime_type=mime))


# --- records to updates -------------------------------------------------------------------


def text(value: str) -> a.TextContentBlock:
    return a.TextContentBlock(type="text", text=value)


def user_message(message: Message, cwd: str | None) -> list[Any]:
    """A user's prompt: its text, its attached code and its images."""
    updates: list[Any] = []
    for block in message.content:
        if isinstance(block, TextBlock) and block.text:
            updates.append(a.UserMessageChunk(session_update="user_message_chunk", content=text(block.text),
                                              message_id=message.id))
        elif isinstance(block, CodeContextBlock):
            updates.append(a.UserMessageChunk(session_update="user_message_chunk",
                                              content=context_resource(block, cwd), message_id=message.id))
        elif isinstance(block, ImageBlock):
            updates.append(a.UserMessageChunk(session_update="user_message_chunk",
                                              content=image_content(block), message_id=message.id))
    return updates


def is_tool_results(message: Message) -> bool:
    return message.role == "user" and bool(message.content) and all(
        isinstance(b, ToolResultBlock) for b in message.content)


def tool_results(message: Message) -> list[Any]:
    """The daemon's answers to a model's tool calls: each call's update."""
    return [a.ToolCallProgress(
        session_update="tool_call_update", tool_call_id=block.call_id,
        status="failed" if block.is_error else "completed",
        content=[a.ContentToolCallContent(type="content", content=text(block.content))],
        raw_output=block.content) for block in message.content if isinstance(block, ToolResultBlock)]


def tool_call(block: ToolCallBlock) -> a.ToolCallStart:
    return a.ToolCallStart(session_update="tool_call", tool_call_id=block.id,
                           title=TOOL_TITLES.get(block.name, block.name),
                           kind="think" if block.name == "update_tasks" else "other",
                           status="in_progress", raw_input=block.input)


def agent_delta(event: m.MessageDelta) -> list[Any]:
    updates: list[Any] = []
    if event.thinking:
        updates.append(a.AgentThoughtChunk(session_update="agent_thought_chunk", content=text(event.thinking),
                                           message_id=event.message_id))
    if event.text:
        updates.append(a.AgentMessageChunk(session_update="agent_message_chunk", content=text(event.text),
                                           message_id=event.message_id))
    return updates


def agent_content(message: Message) -> list[Any]:
    """A whole reply's blocks, for a reply that arrives complete (an imported one)."""
    updates: list[Any] = []
    for block in message.content:
        if isinstance(block, ThinkingBlock) and block.text:
            updates.append(a.AgentThoughtChunk(session_update="agent_thought_chunk", content=text(block.text),
                                               message_id=message.id))
        elif isinstance(block, TextBlock) and block.text:
            updates.append(a.AgentMessageChunk(session_update="agent_message_chunk", content=text(block.text),
                                               message_id=message.id))
        elif isinstance(block, ToolCallBlock):
            updates.append(tool_call(block))
    return updates


def reply_completed(message: Message) -> list[Any]:
    """The end of a streamed reply: its tool calls (the text came as deltas), and a
    note when it failed, so a failover's first attempt is not silently mixed in."""
    updates: list[Any] = [tool_call(b) for b in message.content if isinstance(b, ToolCallBlock)]
    if message.status == "failed":
        updates.append(a.AgentMessageChunk(
            session_update="agent_message_chunk", message_id=message.id,
            content=text(f"\n\n[duologue: this reply failed: {message.error or 'no reason given'}]\n\n")))
    return updates


def plan(tasks: TaskList) -> a.AgentPlanUpdate:
    return a.AgentPlanUpdate(session_update="plan", entries=[
        a.PlanEntry(content=task.content, priority="medium", status=task.status) for task in tasks.tasks])


def usage(message: Message, model: ModelInfo | None, session_cost: float) -> a.UsageUpdate | None:
    """Context used by the reply's request and the model's window; the session's cost,
    left out (it is optional) when the daemon gave the reply none: the emulator bills
    nothing, and a 0 would read as a free reply."""
    if message.usage is None or model is None:
        return None
    used = message.usage.prompt_tokens + message.usage.output_tokens
    cost = None if message.cost_usd is None else a.Cost(amount=round(session_cost, 6), currency="USD")
    return a.UsageUpdate(session_update="usage_update", used=used, size=model.context_window, cost=cost)


def stop_reason(message: Message | None, outcome: str) -> str:
    """A turn's ACP stop reason from its last reply (or the turn's outcome)."""
    status = message.status if message is not None else outcome
    if status == "cancelled":
        return "cancelled"
    if status == "refused":
        return "refusal"
    if message is not None and message.stop_reason in ("max_tokens", "MAX_TOKENS"):
        return "max_tokens"
    return "end_turn"


# --- configuration ------------------------------------------------------------------------


def config_options(session: Session, models: list[ModelInfo], thinking: str) -> list[Any]:
    """The model selector (every catalog model by short name, plus auto) and, when the
    session's model can think, the thought level of its next turns."""
    by_id = {info.id: info for info in models}
    current = AUTO if session.model == AUTO else by_id[session.model].short_name if session.model in by_id \
        else session.model
    choices = [a.SessionConfigSelectOption(value=AUTO, name="auto",
                                           description="duologue picks a model for each turn")]
    choices += [a.SessionConfigSelectOption(
        value=info.short_name, name=info.short_name,
        description=f"{info.display_name} ({info.id}, {info.provider})"
                    + ("" if info.available else "; not available now"))
        for info in models]
    options: list[Any] = [a.SessionConfigOptionSelect(
        type="select", id=MODEL_OPTION, name="Model", category="model", current_value=current,
        description="The model that answers; changing it is a duologue model switch", options=choices)]
    info = by_id.get(session.model)
    if info is not None and info.thinking != "none":
        options.append(a.SessionConfigOptionSelect(
            type="select", id=THINKING_OPTION, name="Thinking", category="thought_level",
            current_value=thinking, description="How much the model thinks on this client's turns",
            options=[a.SessionConfigSelectOption(value=v, name=v) for v in THINKING_VALUES]))
    return options


def fork(doc: m.ExportDocument, fork_id: str, project_id: str | None, now: datetime) -> m.ImportSession:
    """A copy of an exported session as a new one (``session/fork``), through the
    daemon's import: its finished messages in order, each with its model, usage and
    status; a reply still streaming is left out (its turn is the source's). The fork
    names its source in its metadata."""
    messages = [m.ImportMessage(
        external_id=f"{fork_id}:{msg.id}", role=msg.role, content=list(msg.content), created_at=msg.created_at,
        model=msg.model, usage=msg.usage, status=msg.status, error=msg.error)
        for msg in doc.messages if msg.status != "streaming"]
    return m.ImportSession(
        external_id=fork_id, sources=["duologue"], title=f"{doc.session.title or 'session'} (fork)",
        created_at=now, project_id=project_id, messages=messages,
        metadata={"client": "acp", "forked_from": doc.session.id})


def task_inputs(tasks: TaskList) -> list[m.TaskInput]:
    """A task list as ``tasks/update`` takes it (a fork's copy keeps ids and statuses)."""
    return [m.TaskInput(id=t.id, content=t.content, status=t.status, active_form=t.active_form)
            for t in tasks.tasks]


def session_info(session: Session) -> a.SessionInfo:
    return a.SessionInfo(session_id=session.id, cwd=session.project_id or "/", title=session.title,
                         updated_at=session.updated_at.isoformat())
