"""A model for one turn, and a switch to ``auto``: what the switches and
``current_model`` say (docs/protocol.md, ``ModelSwitch``).

- ``session/send`` with ``model`` records the switch to that model before the turn's
  ``progress`` begin, and after the turn the switch back to the session's model, so
  ``current_model`` names the model that answers next.
- ``session/switch_model`` to ``auto`` is recorded with ``choice: "auto"`` (it keeps
  the answering model, so ``from_model == to_model``).
"""

from __future__ import annotations

from conversation_support import collect_turn

from duologue.daemon.emulator import Reply
from duologue.protocol import methods as m


async def test_a_model_for_one_turn_is_switched_to_before_the_turn_and_back_after_it(c1, emulator):
    emulator.script("gemini", Reply(text="Flash here.", thinking=""))
    s = await c1.create_session(model="sonnet")
    await c1.attach(s.id, since_seq=s.last_seq)
    sent = await c1.send(s.id, "just this once", model="flash")
    events = await collect_turn(c1, sent.turn_id)
    kinds = [type(e).__name__ if not isinstance(e, m.Progress) else f"progress:{e.kind}" for e in events]
    first_switch = kinds.index("ModelSwitched")
    assert first_switch < kinds.index("progress:begin"), kinds
    switches = [e.switch for e in events if isinstance(e, m.ModelSwitched)]
    assert [(w.from_model, w.to_model) for w in switches] == [
        ("claude-sonnet-5-5", "gemini-3.8-flash"), ("gemini-3.8-flash", "claude-sonnet-5-5")]
    assert all(w.choice is None for w in switches)
    reply = next(e.message for e in events if isinstance(e, m.MessageCompleted) and e.message.role == "assistant")
    assert reply.model == "gemini-3.8-flash" and reply.text == "Flash here."
    got = await c1.get_session(s.id)
    assert got.session.model == got.session.current_model == "claude-sonnet-5-5"


async def test_switching_to_auto_says_so_in_the_switch(c1):
    s = await c1.create_session(model="sonnet")
    result = await c1.switch_model(s.id, "auto")
    assert result.switch is not None
    assert result.switch.choice == "auto"
    assert result.switch.from_model == result.switch.to_model == "claude-sonnet-5-5"
    assert result.session.model == "auto"
    back = await c1.switch_model(s.id, "flash")
    assert back.switch.choice == "gemini-3.8-flash"
