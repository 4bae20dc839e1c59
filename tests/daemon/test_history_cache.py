"""The incremental history sends exactly what the from-scratch path would.

Sessions are grown step by step through the real write path (``Sessions`` on a real
LMDB store, the turns' ``Histories`` watching its commits): prompts (some queued
behind a running turn), replies streamed in checkpoints, failovers to another
model, tool rounds, thinking with signatures, refusals, pins of earlier messages
and an import's undo truncating the session. After every step, what a round would
send (the selected messages, their token total, and each adapter's encoding for
models of both providers) must equal what the from-scratch path computes from the
store, byte for byte.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duologue.daemon.catalog import Catalog
from duologue.daemon.hub import Hub
from duologue.daemon.ids import new_id
from duologue.daemon.providers.anthropic import build_params
from duologue.daemon.providers.base import TurnRequest
from duologue.daemon.providers.gemini import build_contents
from duologue.daemon.routing import message_tokens
from duologue.daemon.sessions import Sessions
from duologue.daemon.store import Store
from duologue.daemon.turns.history import Histories
from duologue.daemon.turns.request import history_for
from duologue.protocol import methods as m
from duologue.protocol.entities import (
    CodeContextBlock,
    Message,
    Session,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

CATALOG = Catalog()
MODELS = ["claude-sonnet-5-5", "claude-haiku-4-5", "gemini-3.8-flash", "gemini-3.1-pro-preview"]
"""Writers and targets: a thinking Claude (tool continuations need its own thinking),
a Claude that thinks only when asked, and two Gemini 3 models (signatures)."""

reply_blocks = st.lists(st.one_of(
    st.builds(TextBlock, text=st.sampled_from(["", " ", "an answer", "```code```"]),
              signature=st.sampled_from([None, "c2lnLXQ="])),
    st.builds(ThinkingBlock, text=st.sampled_from(["hmm", ""]), signature=st.sampled_from([None, "c2lnLWs="]),
              redacted=st.sampled_from([None, None, "ZW5j"])),
), max_size=3)
prompt_blocks = st.lists(st.one_of(
    st.builds(TextBlock, text=st.sampled_from(["a question", "prove it", "  "])),
    st.builds(CodeContextBlock, path=st.just("a.py"), text=st.sampled_from(["x = 1", "```\n"])),
), min_size=1, max_size=2)

steps = st.lists(st.one_of(
    st.tuples(st.just("prompt"), prompt_blocks, st.booleans()),
    st.tuples(st.just("reply"), st.sampled_from(MODELS), reply_blocks,
              st.sampled_from(["complete", "complete", "failed", "cancelled", "interrupted", "refused"]),
              st.integers(0, 2)),
    st.tuples(st.just("tools"), st.sampled_from(MODELS), reply_blocks, st.integers(1, 2), st.booleans()),
    st.tuples(st.just("pin"), st.integers(0, 10_000)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
), min_size=1, max_size=40)


class Grower:
    """A session grown the way turns grow it, through ``Sessions.commit``."""

    def __init__(self, home: Path):
        self.store = Store(home)
        self.sessions = Sessions(self.store, CATALOG, Hub())
        self.histories = Histories(self.store)
        self.sessions.watch(self.histories.committed)
        self.session = self.sessions.create(m.CreateParams(model="sonnet"))
        self.snapshots: list[Session] = [self.session]
        self.pending: list[Message] = []
        """Prompts of turns not yet ended, oldest (the running one) first."""
        self.last_prompt: Message | None = None

    def _commit(self, *messages: Message | None) -> list[Message]:
        draft = self.sessions.draft(self.session)
        out = []
        for msg in messages:
            if msg is None:
                continue
            if msg.seq == 0:
                made = draft.add_message(lambda seq, msg=msg: msgspec.structs.replace(msg, seq=seq))
            else:
                draft.messages.append(msg)
                draft.emit(m.MessageCompleted, message=msg)
                made = msg
            out.append(made)
        self.session = self.sessions.commit(draft)
        self.snapshots.append(self.session)
        return out

    def _message(self, role: str, content: list, turn_id: str, **fields) -> Message:
        return Message(id=new_id(), session_id=self.session.id, seq=0, role=role, content=content,  # type: ignore[arg-type]
                       created_at=self.sessions.clock(), turn_id=turn_id, **fields)

    def prompt(self, content: list, pinned: bool) -> None:
        (prompt,) = self._commit(self._message("user", content, new_id(), pinned=pinned))
        self.pending.append(prompt)
        self.last_prompt = prompt

    def reply(self, model: str, content: list, status: str, checkpoints: int) -> None:
        """An attempt streamed in checkpoints (rewrites at its seq), then ended."""
        if not self.pending:
            return
        turn_id = self.pending[0].turn_id or ""
        (streaming,) = self._commit(self._message("assistant", content[:1], turn_id, model=model,
                                                  status="streaming"))
        for _ in range(checkpoints):
            self._commit(msgspec.structs.replace(streaming, content=content[:2]))
        self._commit(msgspec.structs.replace(streaming, content=content, status=status))
        if status in ("complete", "refused", "cancelled", "interrupted"):
            self.pending.pop(0)
        elif len(self.pending) > 1:  # failed: fail over to another model, or give up on the turn
            self.pending.pop(0)

    def tools(self, model: str, content: list, calls: int, answered: bool) -> None:
        """A tool round: a reply calling tools, then (maybe) their results."""
        if not self.pending:
            return
        turn_id = self.pending[0].turn_id or ""
        signature = "c2ln" if model.startswith("gemini") else None
        blocks = [*content, *(ToolCallBlock(id=f"call-{new_id()}", name="update_tasks", input={"n": i},
                                            signature=signature if i == 0 else None) for i in range(calls))]
        self._commit(self._message("assistant", blocks, turn_id, model=model, status="complete"))
        if answered:
            results = [ToolResultBlock(call_id=b.id, name=b.name, content="ok") for b in blocks
                       if isinstance(b, ToolCallBlock)]
            self._commit(self._message("user", results, turn_id))

    def pin(self, pick: int) -> None:
        messages = self.store.messages(self.session.id)
        if messages:
            msg = messages[pick % len(messages)]
            self.sessions.pin(self.session.id, msg.id, not msg.pinned)
            self.session = self.sessions.require(self.session.id)

    def truncate(self, pick: int) -> None:
        """An import's undo: the session cut back to an earlier record."""
        before = self.snapshots[pick % len(self.snapshots)]
        self.store.truncate_session(before, self.session)
        self.session = before
        self.snapshots = [s for s in self.snapshots if s.last_seq <= before.last_seq]
        kept = {msg.id for msg in self.store.messages(self.session.id)}
        self.pending = [p for p in self.pending if p.id in kept]
        if self.last_prompt is not None and self.last_prompt.id not in kept:
            self.last_prompt = None

    def check(self) -> None:
        """The incremental view of the running turn (or the last prompt) against the
        from-scratch path over what the store holds."""
        stored = self.store.messages(self.session.id)
        count, tokens = self.histories.of(self.session).before_last()
        assert (count, tokens) == (max(len(stored) - 1, 0), sum(message_tokens(x) for x in stored[:-1]))
        prompt = self.pending[0] if self.pending else self.last_prompt
        if prompt is None:
            return
        view = self.histories.view(self.session, prompt)
        expected = history_for(stored, prompt)
        assert view.messages == expected
        assert view.tokens == sum(message_tokens(x) for x in expected)
        for model_id in MODELS:
            info = CATALOG.resolve(model_id)
            scratch = TurnRequest(model=model_id, system="be brief", messages=expected, max_tokens=100, info=info)
            incremental = TurnRequest(model=model_id, system="be brief", messages=view.messages,
                                      max_tokens=100, info=info, prepared=view)
            encode = build_params if info.provider == "anthropic" else build_contents
            assert msgspec.json.encode(encode(incremental)) == msgspec.json.encode(encode(scratch))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_a_growing_session_is_sent_the_same_as_prepared_from_scratch(plan):
    with tempfile.TemporaryDirectory() as home:
        grower = Grower(Path(home))
        try:
            for kind, *args in plan:
                getattr(grower, kind)(*args)
                grower.check()
        finally:
            grower.store.close()


def test_a_long_conversation_is_prepared_from_its_settled_start_once(tmp_path):
    """Each round re-encodes only the running turn: the settled start's encoded turns
    are the very objects the round before sent."""
    grower = Grower(tmp_path)
    for _ in range(5):
        grower.prompt([TextBlock(text="a question")], False)
        grower.reply("claude-sonnet-5-5", [TextBlock(text="an answer")], "complete", 0)
    grower.prompt([TextBlock(text="and now?")], False)
    info = CATALOG.resolve("claude-sonnet-5-5")

    def sent() -> list[dict]:
        view = grower.histories.view(grower.session, grower.pending[0])
        return build_params(TurnRequest(model=info.id, system=None, messages=view.messages, info=info,
                                        prepared=view))["messages"]

    first, second = sent(), sent()
    assert len(first) == 11
    assert all(a is b for a, b in zip(first[:8], second[:8]))  # the last two user turns carry cache marks
    grower.store.close()


def test_a_pin_of_an_earlier_message_prepares_the_history_again(tmp_path):
    grower = Grower(tmp_path)
    for _ in range(3):
        grower.prompt([TextBlock(text="a question")], False)
        grower.reply("gemini-3.8-flash", [TextBlock(text="an answer")], "complete", 0)
    grower.prompt([TextBlock(text="and now?")], False)
    before = grower.histories.view(grower.session, grower.pending[0])
    grower.pin(0)
    after = grower.histories.view(grower.session, grower.pending[0])
    assert after.messages[0].pinned and not before.messages[0].pinned
    grower.check()
    grower.store.close()
