"""Sending a prompt from the chat: ``@path`` mentions attached, ``/commands`` run,
the prompt shown as pending until the daemon acknowledges it, and kept in the
session's draft on disk meanwhile, so a chat that quits (or a daemon that is away)
loses nothing: the next chat on the session gives it back.

A part of :class:`~.app.ChatApp`, apart because it is one idea: nothing typed is lost.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from duologue.protocol import methods as m

from ..code_context import ContextArgError
from ..drafts import Draft
from .mentions import attach_mentions
from .prompt import PromptArea


class Sending:
    """The chat app's prompt sending and drafts."""

    _inflight: list[str]
    pending: list[dict[str, Any]]
    """Prompts sent but not acknowledged yet (the daemon may be away): shown marked
    pending, and kept in the session's draft on disk until acknowledged."""

    def _restore_draft(self, got: m.GetResult) -> None:
        """Give back what an earlier chat on this session was given and not acknowledged."""
        draft = self.drafts.load(got.session.id)
        if draft.empty:
            return
        arrived = [(msg.seq, msg.text) for msg in got.messages if msg.role == "user"]
        unsent = [p["text"] for p in draft.pending
                  if not any(seq > p.get("after_seq", 0) and text == p["text"] for seq, text in arrived)]
        kept = " ".join([*unsent, draft.input]).strip()
        if kept:
            self.prompt.value = kept
            if unsent:
                self.transcript.notice(
                    f"⧗ {len(unsent)} prompt{'s' if len(unsent) > 1 else ''} typed earlier never reached the "
                    "daemon; it is back in the input: enter sends it", style="bold yellow")
        self.drafts.save(got.session.id, Draft(input=kept))

    def _save_draft(self) -> None:
        if self.session is None:
            return
        try:
            text = self.prompt.value
        except Exception:  # the screen is gone (quitting): keep what was saved last
            text = self.drafts.load(self.session.id).input
        pending = [{"text": p["text"], "after_seq": p["after_seq"]} for p in self.pending]
        self.drafts.save(self.session.id, Draft(pending=pending, input=text))

    def on_text_area_changed(self, event: PromptArea.Changed) -> None:
        if event.text_area.id == "prompt":
            self.show_hint("")  # typing on makes a listing stale
            if self.ready:
                self._save_draft()

    @property
    def root(self) -> str | None:
        """The project's directory, where ``@path`` mentions are read (None when the
        project is not a directory here)."""
        return self.project if self.project and os.path.isdir(self.project) else None

    def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        text = event.text.strip()
        if not text or self.session is None:
            return
        self.prompt.prompts.add(text)
        if text.startswith("/"):
            self.prompt.clear_prompt()
            self.command(text)
            return
        try:
            context = attach_mentions(text, self.root) if self.root else []
        except ContextArgError as exc:
            self.error_line(f"not sent: {exc}")  # the prompt stays, to be corrected
            return
        self.prompt.clear_prompt()
        self.send(text, **({"context": context} if context else {}))

    def send(self, text: str, **kwargs: Any) -> None:
        """Send, showing the prompt as pending (and keeping it in the draft on disk)
        until the daemon acknowledges it; if it cannot be sent it goes back into the
        input, and a quit meanwhile leaves it in the draft for the next chat."""
        sid = self.session.id if self.session else ""
        self._inflight.append(text)
        entry: dict[str, Any] = {"text": text, "after_seq": self.feed.last_seq,
                                 "view": self.transcript.pending(text)}
        self.pending.append(entry)
        self._save_draft()
        self.transcript.scroll_end(animate=False)

        def settle(sent: bool) -> None:
            if entry in self.pending:
                self.pending.remove(entry)
            entry["view"].remove()
            if not sent:
                if text in self._inflight:
                    self._inflight.remove(text)
                box = self.prompt
                box.value = f"{text} {box.value}".strip()
            self._save_draft()

        async def send() -> None:
            try:
                await self.client.send(sid, text, **kwargs)
            except asyncio.CancelledError:
                self._save_draft()  # quitting: it stays pending in the draft
                raise
            except BaseException:
                settle(False)
                raise
            settle(True)
        self._spawn(send(), "not sent")

    def on_unmount(self) -> None:
        self._save_draft()
