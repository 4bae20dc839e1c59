"""The keys that move around the transcript while the prompt keeps the focus (and
its draft): PgUp/PgDn and ctrl+home/ctrl+end scroll (home/end too, in an empty
prompt: :class:`~.prompt.PromptArea` asks), ctrl+up/ctrl+down go to the previous or
next model switch, ctrl+f finds, ctrl+g expands a paste chip or the newest folded
message, F4 copies the newest code block.

They are the app's priority bindings, since a focused prompt would otherwise take
PgUp and PgDn for itself; while a dialog is open (the session picker) they are its.
"""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from .prompt import PromptArea
from .search import FindBar
from .transcript import Transcript


class TranscriptKeys(App[None]):
    """The base of the chat app: what these keys do, given a ``#transcript`` and a
    ``#prompt``."""

    BINDINGS = [
        # the transcript scrolls while the prompt keeps the focus (and its draft)
        Binding("pageup", "scroll_page(-1)", "Scroll", key_display="PgUp/Dn", priority=True),
        Binding("pagedown", "scroll_page(1)", "Scroll", show=False, priority=True),
        Binding("ctrl+home", "scroll_to('top')", "Top", show=False, priority=True),
        Binding("ctrl+end", "scroll_to('bottom')", "End", show=False, priority=True),
        Binding("ctrl+up", "jump_switch(False)", "Switches", show=False, priority=True),
        Binding("ctrl+down", "jump_switch(True)", "Next switch", show=False, priority=True),
        Binding("ctrl+f", "find", "Find", priority=True),
        Binding("ctrl+g", "expand", "Expand", show=False),
        Binding("f4", "copy_code", "Copy code", show=False),
    ]

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one("#prompt", PromptArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the keys that scroll the transcript belong to a dialog while one is open
        if action in ("scroll_page", "scroll_to", "jump_switch", "find") and len(self.screen_stack) > 1:
            return False
        return True

    def action_scroll_page(self, pages: int) -> None:
        t = self.transcript
        t.scroll_page_up(animate=False) if pages < 0 else t.scroll_page_down(animate=False)

    def action_scroll_to(self, where: str) -> None:
        t = self.transcript
        t.scroll_home(animate=False) if where == "top" else t.scroll_end(animate=False)

    def on_prompt_area_scroll_transcript(self, event: PromptArea.ScrollTranscript) -> None:
        self.action_scroll_to(event.where)

    def action_jump_switch(self, forward: bool) -> None:
        if self.transcript.jump_switch(forward) is None:
            self.notify(f"no {'later' if forward else 'earlier'} model switch")

    def action_find(self) -> None:
        self.query_one(FindBar).open()

    def find(self, text: str) -> None:
        self.query_one(FindBar).open(text)

    def action_expand(self) -> None:
        if self.prompt.pastes:
            self.prompt.action_expand_pastes()
        elif self.transcript.unfold_last() is None:
            self.notify("nothing folded to expand")

    def action_copy_code(self) -> None:
        code = self.transcript.last_code_block()
        if code is None:
            self.notify("no code block to copy")
            return
        self.copy_to_clipboard(code)
        self.notify(f"copied the last code block ({code.count(chr(10)) + 1} lines)")
