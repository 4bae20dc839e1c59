"""Provider-neutral preparation of the unified history for a provider request.

Both providers need the same things from the history before their own encoding:
which messages to send at all, strict user/assistant alternation, tool calls paired
with their results in the very next turn (both APIs reject anything else), and code
context rendered as text a model reads reliably. Doing it once here keeps the two
adapters thin and makes a switch between them lossless in the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from duologue.protocol.entities import (
    CodeContextBlock,
    ContentBlock,
    Message,
    Role,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)


@dataclass(frozen=True)
class Turn:
    """One side's contiguous contribution, ready to encode for any provider."""

    role: Role
    blocks: tuple[ContentBlock, ...]


def render_code_context(block: CodeContextBlock) -> str:
    """Render attached code as a clearly delimited, fenced text block.

    The fence is longer than any backtick run inside the code, so the code cannot
    close it early.
    """
    attrs = [f'path="{block.path}"']
    if block.range is not None:
        attrs.append(f'lines="{block.range.start}-{block.range.end}"')
    if block.language:
        attrs.append(f'language="{block.language}"')
    longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = block.text if block.text.endswith("\n") else block.text + "\n"
    return f"<code_context {' '.join(attrs)}>\n{fence}{block.language or ''}\n{body}{fence}\n</code_context>"


def _sendable(message: Message) -> tuple[ContentBlock, ...]:
    """The blocks of a message worth sending.

    A failed turn that produced no text has nothing to say; partial text of a
    cancelled or interrupted turn is kept (the model should see what it said).
    Empty text blocks are dropped because the APIs reject them.
    """
    if message.status == "failed" and not message.text.strip():
        return ()
    return tuple(b for b in message.content if not (isinstance(b, TextBlock) and not b.text.strip()))


def _merge(messages: list[Message]) -> list[Turn]:
    turns: list[Turn] = []
    for message in messages:
        blocks = _sendable(message)
        if not blocks:
            continue
        if turns and turns[-1].role == message.role:
            turns[-1] = Turn(message.role, turns[-1].blocks + blocks)
        else:
            turns.append(Turn(message.role, blocks))
    return turns


def _call_note(block: ToolCallBlock) -> TextBlock:
    return TextBlock(text=f"[called tool {block.name} with {json.dumps(block.input, sort_keys=True)}; no result was recorded]")


def _result_note(block: ToolResultBlock) -> TextBlock:
    label = "error from" if block.is_error else "result of"
    return TextBlock(text=f"[{label} tool {block.name}: {block.content}]")


def _pair_tools(turns: list[Turn]) -> list[Turn]:
    """Keep a tool call structured only when the next turn answers it, and vice versa.

    An interrupted turn can leave a call without a result, and a cut history a
    result without its call (or a second result for one call); these become text
    notes so nothing is lost and the request stays valid.
    """
    answered: list[set[str]] = []
    for index, turn in enumerate(turns):
        calls = {b.id for b in turn.blocks if isinstance(b, ToolCallBlock)} if turn.role == "assistant" else set()
        following = turns[index + 1] if index + 1 < len(turns) else None
        results = {b.call_id for b in following.blocks if isinstance(b, ToolResultBlock)} if following else set()
        answered.append(calls & results)

    fixed: list[Turn] = []
    for index, turn in enumerate(turns):
        blocks: list[ContentBlock] = []
        if turn.role == "assistant":
            pending = set(answered[index])
            for block in turn.blocks:
                if isinstance(block, ToolCallBlock):
                    if block.id in pending:
                        pending.discard(block.id)  # a repeated id (merged turns) keeps only its first call
                    else:
                        block = _call_note(block)
                elif isinstance(block, ToolResultBlock):  # only a user turn may carry results
                    block = _result_note(block)
                blocks.append(block)
        else:
            unclaimed = set(answered[index - 1]) if index > 0 else set()
            results: list[ContentBlock] = []
            others: list[ContentBlock] = []
            for block in turn.blocks:
                if isinstance(block, ToolResultBlock) and block.call_id in unclaimed:
                    unclaimed.discard(block.call_id)  # one result per call; a duplicate becomes a note
                    results.append(block)
                elif isinstance(block, ToolResultBlock):
                    others.append(_result_note(block))
                elif isinstance(block, ToolCallBlock):  # only an assistant turn may call tools
                    others.append(_call_note(block))
                else:
                    others.append(block)
            blocks = [*results, *others]  # both APIs want the results first
        fixed.append(Turn(turn.role, tuple(blocks)))
    return fixed


def prepare_turns(messages: list[Message]) -> list[Turn]:
    """Sendable, strictly alternating turns with every tool call paired."""
    return _pair_tools(_merge(messages))
