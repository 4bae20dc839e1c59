"""Provider-neutral preparation of the unified history for a provider request.

Both providers need the same things from the history before their own encoding:
which messages to send at all, strict user/assistant alternation, tool calls paired
with their results in the very next turn (both APIs reject anything else), and code
context rendered as text a model reads reliably. Doing it once here keeps the two
adapters thin and makes a switch between them lossless in the same way.

Provider side data follows one rule (docs/protocol.md, "Provider side data"): thinking
blocks and signatures go back, unchanged and in their order, only to the model that
wrote the message; for any other model they are left out (Claude ties thinking blocks
to the model and the conversation; a Gemini signature is checked against the model
that issued it). Refused exchanges are left out of every later request, as both
providers advise, and a request never ends with an assistant message (Claude 4.6+
refuses prefill; a failed attempt's partial text stays in the transcript only).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from duologue.protocol.entities import (
    CodeContextBlock,
    ContentBlock,
    ImageBlock,
    Message,
    ModelInfo,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)


_E = TypeVar("_E")


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


def images_as_notes(turn: Turn, model: str) -> Turn:
    """The turn for a model that reads no images: each image becomes a note saying
    so, so neither the model nor a reader of its request is left to guess why the
    user's words mention a picture it never got."""
    if not any(isinstance(b, ImageBlock) for b in turn.blocks):
        return turn
    note = TextBlock(text=f"[image omitted: {model} does not accept images]")
    return Turn(turn.role, tuple(note if isinstance(b, ImageBlock) else b for b in turn.blocks))


@functools.lru_cache(maxsize=256)
def _text_only(encode: Callable[[Turn], _E], model: str) -> Callable[[Turn], _E]:
    def encode_text_only(turn: Turn) -> _E:
        return encode(images_as_notes(turn, model))
    return encode_text_only


def turn_encoder(encode: Callable[[Turn], _E], info: ModelInfo | None, model: str) -> Callable[[Turn], _E]:
    """An adapter's ``encode`` as ``model`` needs it: itself when the model reads
    images (or the catalog does not know it), else one that notes images first.
    One model always gets the same function, so the history cache, which keeps
    encodings per target and encoder, keeps them across rounds."""
    if info is None or info.images:
        return encode
    return _text_only(encode, model)


def _own(block: ContentBlock) -> ContentBlock | None:
    """A block as it goes back to the model that wrote it: as stored."""
    if isinstance(block, TextBlock) and not block.text.strip() and not block.signature:
        return None
    return block


def _foreign(block: ContentBlock) -> ContentBlock | None:
    """A block as another model sees it: no thinking, no signatures."""
    if isinstance(block, ThinkingBlock):
        return None
    if isinstance(block, TextBlock):
        return TextBlock(text=block.text) if block.text.strip() else None
    if isinstance(block, ToolCallBlock) and block.signature is not None:
        return ToolCallBlock(id=block.id, name=block.name, input=block.input)
    return block


def _sendable(message: Message, target: str | None) -> tuple[ContentBlock, ...]:
    """The blocks of a message worth sending to ``target``.

    A failed turn that produced no text has nothing to say; partial text of a
    cancelled or interrupted turn is kept (the model should see what it said).
    Empty text blocks are dropped because the APIs reject them (one that carries a
    signature goes back to its own model, which sent it that way).
    """
    if message.status == "failed" and not message.text.strip():
        return ()
    keep = _own if target is not None and message.model == target else _foreign
    return tuple(b for b in map(keep, message.content) if b is not None)


def _without_refused(messages: list[Message]) -> list[Message]:
    """Leave out every message of a turn that ended refused (the prompt included)."""
    refused = {m.turn_id or m.id for m in messages if m.status == "refused"}
    if not refused:
        return messages
    return [m for m in messages if (m.turn_id or m.id) not in refused]


def _merge(messages: list[Message], target: str | None) -> list[Turn]:
    turns: list[Turn] = []
    for message in messages:
        blocks = _sendable(message, target)
        if not blocks:
            continue
        if turns and turns[-1].role == message.role:
            turns[-1] = Turn(message.role, turns[-1].blocks + blocks)
        else:
            turns.append(Turn(message.role, blocks))
    return turns


def _call_note(block: ToolCallBlock, answered: bool = False) -> TextBlock:
    called = f"[called tool {block.name} with {json.dumps(block.input, sort_keys=True)}"
    return TextBlock(text=called + ("]" if answered else "; no result was recorded]"))


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


def _unthought_continuation(turns: list[Turn]) -> list[Turn]:
    """Turn a tool round another model started into text notes.

    A thinking Claude model refuses a tool continuation whose assistant turn does not
    open with its own thinking block; when the calls came from another model (a
    failover or a switch in the middle of a tool round) there is none to send, so the
    calls and their results travel as notes, which every model accepts.
    """
    if len(turns) < 2 or turns[-1].role != "user" or turns[-2].role != "assistant":
        return turns
    calls, results = turns[-2], turns[-1]
    if not any(isinstance(b, ToolCallBlock) for b in calls.blocks):
        return turns
    if calls.blocks and isinstance(calls.blocks[0], ThinkingBlock):
        return turns
    noted_calls = tuple(_call_note(b, answered=True) if isinstance(b, ToolCallBlock) else b for b in calls.blocks)
    noted_results = tuple(_result_note(b) if isinstance(b, ToolResultBlock) else b for b in results.blocks)
    return [*turns[:-2], Turn("assistant", noted_calls), Turn("user", noted_results)]


def prepare_span(messages: list[Message], target: str | None = None) -> list[Turn]:
    """Sendable, strictly alternating turns with every tool call paired, for the
    model ``target`` (whose own side data is kept), as any stretch of the history
    prepares: nothing yet about how a request must end.

    Two stretches prepare apart as they would together when the first ends
    ``settled`` and the second's first turn is a user turn (see ``settled``).
    """
    return _pair_tools(_merge(_without_refused(messages), target))


def settled(turns: list[Turn]) -> bool:
    """Whether prepared turns end where no rule looks across: on an assistant turn
    that calls no tool (or on nothing at all).

    After such a turn, a following user turn cannot merge into it, answers none of
    its calls, and leaves ``_unthought_continuation`` nothing to rewrite, and the
    trailing-assistant rule stops at that user turn. So for a ``settled`` start A
    and a rest B whose first prepared turn is a user turn,
    ``prepare_turns(A + B) == prepare_span(A) + prepare_turns(B)`` (refusals leave
    whole turns out, so A and B must share no turn).
    """
    if not turns:
        return True
    last = turns[-1]
    return last.role == "assistant" and not any(isinstance(b, ToolCallBlock) for b in last.blocks)


def finish_turns(turns: list[Turn], *, thinking_continuation: bool = False) -> list[Turn]:
    """A request's end: never an assistant turn last (Claude 4.6+ refuses prefill; a
    trailing attempt stays in the transcript only), and a tool round another model
    started as notes for a model that needs its own thinking first."""
    turns = list(turns)
    while turns and turns[-1].role == "assistant":
        turns.pop()
    return _unthought_continuation(turns) if thinking_continuation else turns


def prepare_turns(messages: list[Message], target: str | None = None, *,
                  thinking_continuation: bool = False) -> list[Turn]:
    """Sendable, strictly alternating turns with every tool call paired, for the
    model ``target`` (whose own side data is kept), ending with a user turn.

    ``thinking_continuation`` is set for a model that demands its thinking block
    before the calls of a tool continuation (a thinking Claude model).
    """
    return finish_turns(prepare_span(messages, target), thinking_continuation=thinking_continuation)


class PreparedHistory(Protocol):
    """A history whose settled start was prepared and encoded before (the turns'
    history cache), so a request re-prepares only what came after it."""

    def encoded(self, target: str, encode: Callable[[Turn], _E], thinking_continuation: bool) -> list[_E]:
        """``[encode(t) for t in prepare_turns(messages, target, ...)]``, the same
        values, from the encodings kept for the settled start plus the rest's."""
        ...


def encode_history(messages: list[Message], target: str, encode: Callable[[Turn], _E], *,
                   prepared: PreparedHistory | None = None, thinking_continuation: bool = False) -> list[_E]:
    """The history as a provider's request carries it, one ``encode``d value a turn:
    from ``prepared`` when the round has it, else prepared here from the messages."""
    if prepared is not None:
        return prepared.encoded(target, encode, thinking_continuation)
    return [encode(turn) for turn in prepare_turns(messages, target, thinking_continuation=thinking_continuation)]
