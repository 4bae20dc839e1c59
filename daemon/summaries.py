"""Fitting a session's history into a model's window.

When the unified history fits, it goes verbatim. When it does not, the older part is
replaced by a summary written by the summary model, while the recent turns stay
verbatim and pinned context (pinned messages and the code context the user
attached) travels verbatim whatever its age. The summary is stored with the range it
covers and reused while that range is unchanged, so it is computed once and can be
shown (``session/summaries``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from duologue.protocol import methods as m
from duologue.protocol.entities import (
    CodeContextBlock,
    ImageBlock,
    ContextSummary,
    Message,
    ModelInfo,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)

from .providers.base import ProviderError, TextDelta, TurnRequest
from .routing import Routing, estimate_tokens, message_tokens
from .sessions import Sessions

log = logging.getLogger(__name__)

RECENT_SHARE = 0.6
"""At most this share of the budget goes to recent turns kept verbatim."""
OVERHEAD_TOKENS = 600
"""System prompt framing and tool declarations, roughly."""
SUMMARY_MAX_TOKENS = 2048

SUMMARY_SYSTEM = (
    "You summarise the earlier part of a conversation between a user and AI assistants so "
    "that another model can continue it. Keep decisions, facts, names, numbers, code "
    "identifiers, open questions and what the user wants. Write compact prose or bullets. "
    "Do not add anything that was not said."
)


def _transcript(messages: Iterable[Message]) -> str:
    lines = []
    for msg in messages:
        who = "User" if msg.role == "user" else f"Assistant ({msg.model or 'unknown model'})"
        parts = []
        for block in msg.content:
            if isinstance(block, TextBlock):
                parts.append(block.text)
            elif isinstance(block, CodeContextBlock):
                parts.append(f"[attached {block.path}; kept verbatim elsewhere]")
            elif isinstance(block, ImageBlock):
                parts.append(f"[showed an image ({block.media_type}); the summary cannot see it]")
            elif isinstance(block, ToolCallBlock):
                parts.append(f"[called tool {block.name}]")
            elif isinstance(block, ToolResultBlock):
                parts.append(f"[tool {block.name} answered: {block.content[:200]}]")
        if parts:
            lines.append(f"{who}: " + "\n".join(parts))
    return "\n\n".join(lines)


class WindowFitter:
    def __init__(self, sessions: Sessions, routing: Routing, summary_model: str | None):
        self.sessions = sessions
        self.routing = routing
        self.summary_model = summary_model

    async def fit(self, session_id: str, system: str | None, model: ModelInfo,
                  history: list[Message], max_output: int, tokens: int | None = None) -> list[Message]:
        """``history`` itself when it fits (``tokens``: its total, when the caller
        keeps it counted), else a new list with a summary standing in for the older part."""
        budget = model.context_window - max_output - OVERHEAD_TOKENS - estimate_tokens(system or "")
        if tokens is not None and tokens <= budget:
            return history
        sizes = [message_tokens(msg) for msg in history]
        if sum(sizes) <= budget:
            return history
        cut = self._recent_start(history, sizes, budget)
        older, recent = history[:cut], history[cut:]
        pinned = [msg for msg in older if msg.pinned]
        attached = [b for msg in older if not msg.pinned for b in msg.content
                    if isinstance(b, CodeContextBlock)]
        summary = await self._summary(session_id, model, [msg for msg in older if not msg.pinned],
                                      covers_up_to=older[-1].seq)
        header = (f"Summary of the {summary.covered_messages} earlier messages of this conversation "
                  f"(written by {summary.model} because the full history does not fit this model's "
                  f"window):\n\n{summary.text}")
        stand_in = Message(id=f"summary-{summary.seq}", session_id=session_id, seq=0, role="user",
                           content=[TextBlock(text=header), *attached], created_at=summary.created_at)
        return [stand_in, *pinned, *recent]

    def _recent_start(self, history: list[Message], sizes: list[int], budget: int) -> int:
        """Index where the verbatim tail begins: whole turns, newest first, within the
        recent share of the budget; always at least the last message."""
        pinned_cost = sum(size for msg, size in zip(history, sizes) if msg.pinned)
        allowance = max(budget * RECENT_SHARE - pinned_cost, 0)
        used, start = 0, len(history) - 1
        for i in range(len(history) - 1, -1, -1):
            if used + sizes[i] > allowance and i < len(history) - 1:
                break
            used += sizes[i]
            start = i
        # begin on a prompt, not on a reply or a tool result, so roles stay natural
        while start < len(history) - 1 and not _is_prompt(history[start]):
            start += 1
        return max(start, 1)

    async def _summary(self, session_id: str, target: ModelInfo, messages: list[Message],
                       covers_up_to: int) -> ContextSummary:
        for existing in reversed(self.sessions.store.summaries(session_id)):
            if existing.covers_up_to_seq == covers_up_to:
                return existing
        writer = self._writer()
        text = await self._write(writer, messages)
        session = self.sessions.require(session_id)
        draft = self.sessions.draft(session)
        summary = ContextSummary(session_id=session_id, seq=draft.seq + 1, covers_up_to_seq=covers_up_to,
                                 covered_messages=len(messages), model=writer.id, text=text,
                                 created_at=draft.now, for_model=target.id)
        draft.emit(m.ContextSummarized, summary=summary)
        draft.summaries.append(summary)
        self.sessions.commit(draft)
        log.info("session %s: summarised %d messages with %s for %s", session_id, len(messages),
                 writer.id, target.id)
        return summary

    def _writer(self) -> ModelInfo:
        catalog = self.sessions.catalog
        if self.summary_model:
            model = catalog.resolve(self.summary_model)
            self.routing.require_available(model)
            return model
        model = self.routing.pick_for_summary()
        if model is None:
            raise ProviderError("bad_request", "no model is available to summarise the history",
                                retryable=False)
        return model

    async def _write(self, writer: ModelInfo, messages: list[Message]) -> str:
        prompt = Message(id="summary-request", session_id="", seq=0, role="user",
                         content=[TextBlock(text="Summarise this conversation:\n\n" + _transcript(messages))],
                         created_at=messages[0].created_at)
        request = TurnRequest(model=writer.id, system=SUMMARY_SYSTEM, messages=[prompt], tools=[],
                              max_tokens=SUMMARY_MAX_TOKENS)
        parts = []
        events = (await self.routing.ready(writer.provider)).stream(request)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
        finally:
            await events.aclose()
        return "".join(parts).strip()


def _is_prompt(msg: Message) -> bool:
    return msg.role == "user" and any(isinstance(b, (TextBlock, CodeContextBlock)) for b in msg.content)
